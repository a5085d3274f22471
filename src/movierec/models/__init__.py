"""Recommendation models: the fusion model and the artifacts services load."""
