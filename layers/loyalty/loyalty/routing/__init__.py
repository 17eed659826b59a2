"""The router: which concern's queue gets which event, declared as data."""
