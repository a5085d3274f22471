"""Which encoder fills each computed modality, and with what options.

Environment (prefix ``MOVIEREC_FEATURES_``) or CLI options; options are JSON objects checked
against the encoder's own option model, so a typo is an error, not a silent default::

    MOVIEREC_FEATURES_TEXT_OPTIONS='{"model": "bert-base-uncased"}'
    MOVIEREC_FEATURES_POSTER_ENCODER=open-clip
    MOVIEREC_FEATURES_POSTER_OPTIONS='{"model": "ViT-B-32", "pretrained": "/models/clip.pt"}'
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from movierec.features.encoder import Encoder, create_encoder
from movierec.features.errors import EncoderError

COMPUTED_MODALITIES: tuple[str, ...] = ("text", "poster", "audio")
"""Modalities computed from raw inputs; the trailer_* ones are imported precomputed."""


class FeatureSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOVIEREC_FEATURES_", env_file=".env", extra="ignore")

    text_encoder: str = "sentence-transformer"
    text_options: dict = {}
    poster_encoder: str = "efficientnet-lite0"
    poster_options: dict = {}
    audio_encoder: str = "yamnet"
    audio_options: dict = {}
    device: str = "auto"

    def encoder_spec(self, modality: str) -> tuple[str, dict]:
        if modality not in COMPUTED_MODALITIES:
            raise EncoderError(f"{modality!r} is not computed by an encoder; computed: {', '.join(COMPUTED_MODALITIES)}")
        options = dict(getattr(self, f"{modality}_options"))
        options.setdefault("device", self.device)
        return getattr(self, f"{modality}_encoder"), options

    def create(self, modality: str) -> Encoder:
        name, options = self.encoder_spec(modality)
        return create_encoder(name, options, modality=modality)
