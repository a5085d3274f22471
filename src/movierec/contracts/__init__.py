"""Pydantic schemas shared by services and clients: one contract for every service pair."""
