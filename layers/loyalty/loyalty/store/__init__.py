"""The single DynamoDB table: entities with their keys, and the only module family that uses boto3."""
