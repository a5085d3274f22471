"""Gateway service: the only public API."""
