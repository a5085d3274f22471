"""Evaluation: metric functions, the shared protocol, peer libraries and the quality report."""
