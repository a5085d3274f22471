"""Feedback service: events into PostgreSQL, exactly once."""
