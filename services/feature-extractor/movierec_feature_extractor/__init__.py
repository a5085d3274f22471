"""Feature-extractor service: modality features for new or changed movies."""
