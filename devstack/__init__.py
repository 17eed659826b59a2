"""The local stack: the whole system from template.yaml on one machine, on moto, with no Docker."""
