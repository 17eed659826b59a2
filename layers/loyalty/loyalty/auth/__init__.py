"""Who is calling: the principal an API request was authenticated as (verified by API Gateway)."""
