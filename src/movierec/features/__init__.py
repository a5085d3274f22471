"""Modality encoders and the versioned feature store."""
