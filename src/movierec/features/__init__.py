"""Modality encoders and the versioned feature store.

- ``FeatureStore`` / ``ModalityFeatures`` / ``MODALITIES``: the on-disk store every model reads.
- ``create_encoder`` / ``known_encoders``: the encoder registry (text, poster, audio).
- ``FeatureSettings``: which encoder fills each modality (env prefix ``MOVIEREC_FEATURES_``).
- ``build_feature_store``: incremental, resumable extraction for a whole catalog.
- Errors: ``EncoderError`` (an encoder cannot be built), ``BadItemError`` (one input is unusable),
  ``FeatureStoreError`` (the store is missing or inconsistent).

Torch and the model libraries are imported only when an encoder is created.
"""

from movierec.features.catalog_build import build_feature_store
from movierec.features.config import COMPUTED_MODALITIES, FeatureSettings
from movierec.features.encoder import Encoder, create_encoder, known_encoders
from movierec.features.errors import BadItemError, EncoderError
from movierec.features.store import MODALITIES, FeatureStore, FeatureStoreError, ModalityFeatures

__all__ = [
    "BadItemError", "COMPUTED_MODALITIES", "Encoder", "EncoderError", "FeatureSettings", "FeatureStore",
    "FeatureStoreError", "MODALITIES", "ModalityFeatures", "build_feature_store", "create_encoder", "known_encoders",
]
