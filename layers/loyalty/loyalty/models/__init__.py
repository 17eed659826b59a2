"""Pydantic models shared by every capability."""
