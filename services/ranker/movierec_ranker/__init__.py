"""Ranker service: top-N over fused item embeddings."""
