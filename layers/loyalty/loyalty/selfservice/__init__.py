"""Customer self-service (``/me``): a signed-in customer's own profile, points and reservations."""
