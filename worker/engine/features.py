"""Cached encoder features for a frozen pretrained encoder.

A frozen encoder's output for an image never changes, so it is computed once per image
(``encode_images``) and kept as float16; training and MC-dropout scoring then run only the
decoder and head on it. Where the features live is the caller's business: the service
stores ``pack_encoded`` bytes per image, the simulator keeps them in memory. A cache entry
is valid only under the same ``encoder_fingerprint`` (encoder kind, weights, image size).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from worker.engine.encoders import encoder_spec, state_fingerprint
from worker.engine.model import (
    FEATURE_DTYPE,
    PretrainedSegmenter,
    SegmentationModel,
    images_to_tensor,
)

# Bump when the encoder's forward or the feature layout changes: old caches become invalid.
# 2: EfficientNet-Lite0 takes (x - 127) / 128 instead of ImageNet's mean/std.
FEATURE_FORMAT_VERSION = 2


@dataclass(frozen=True)
class EncodedImage:
    """features: one (C_i, h_i, w_i) float16 CPU tensor per encoder scale, finest first;
    image_size: the (H, W) of the image they were computed from."""

    features: tuple[torch.Tensor, ...]
    image_size: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return sum(f.numel() * f.element_size() for f in self.features)

    def flipped(self) -> EncodedImage:
        """The horizontal mirror (flip of every map), an exact augmentation of features."""
        return EncodedImage(tuple(f.flip(-1) for f in self.features), self.image_size)


def frozen_encoder_model(model: SegmentationModel) -> PretrainedSegmenter:
    """``model`` when it is a pretrained model with a frozen encoder, else ValueError."""
    if not isinstance(model, PretrainedSegmenter) or not model.frozen:
        raise ValueError(
            f"cached features need a pretrained model with a frozen encoder, got kind "
            f"{model.config.kind!r} (freeze_encoder={model.config.freeze_encoder})"
        )
    return model


def encoder_fingerprint(model: SegmentationModel, image_size: tuple[int, int]) -> str:
    """A key for cached features: kind, a hash of the encoder's weights, its input
    normalisation, the image size, the encoder's zoom and the storage format. Any change
    means the cached features are invalid."""
    frozen = frozen_encoder_model(model)
    height, width = image_size
    spec = encoder_spec(frozen.config.kind)
    text = (
        f"{frozen.config.kind}|{state_fingerprint(frozen.encoder)}|{spec.mean}/{spec.std}|"
        f"{height}x{width}|{FEATURE_DTYPE}|v{FEATURE_FORMAT_VERSION}"
    )
    if frozen.config.encoder_zoom != 1:  # only then: zoom-1 keys of existing caches hold
        text += f"|zoom{frozen.config.encoder_zoom}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@torch.no_grad()
def encode_images(
    model: SegmentationModel,
    images: Sequence[NDArray[np.uint8]],
    device: torch.device,
    batch_size: int = 8,
) -> list[EncodedImage]:
    """Encoder features of (H, W, 3) uint8 images, in order, as float16 on the CPU."""
    frozen = frozen_encoder_model(model)
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    for image in images:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"images must be (H, W, 3), got shape {image.shape}")
    result: list[EncodedImage | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        by_shape.setdefault(image.shape, []).append(index)
    for shape, indices in by_shape.items():
        for start in range(0, len(indices), batch_size):
            batch = indices[start : start + batch_size]
            stacked = torch.from_numpy(np.stack([images[i] for i in batch])).to(device)
            maps = frozen.encode(images_to_tensor(stacked))
            for row, index in enumerate(batch):
                result[index] = EncodedImage(
                    tuple(m[row].to(FEATURE_DTYPE).cpu().clone() for m in maps),
                    (int(shape[0]), int(shape[1])),
                )
    return [encoded for encoded in result if encoded is not None]


def stack_encoded(
    encoded: Sequence[EncodedImage], device: torch.device, flips: Sequence[bool] | None = None
) -> list[torch.Tensor]:
    """Equal-size encoded images -> one float32 (B, C_i, h_i, w_i) batch per scale;
    ``flips[b]`` mirrors image b horizontally."""
    if not encoded:
        raise ValueError("no encoded images to stack")
    sizes = {e.image_size for e in encoded}
    if len(sizes) > 1:
        raise ValueError(f"encoded images of different sizes cannot share a batch: {sizes}")
    items = [e.flipped() if flips is not None and flips[i] else e for i, e in enumerate(encoded)]
    return [
        torch.stack([item.features[scale] for item in items]).to(device).float()
        for scale in range(len(items[0].features))
    ]


def pack_encoded(encoded: EncodedImage) -> bytes:
    """Bytes for storage (a NumPy .npz, no pickle); ``unpack_encoded`` reads them back."""
    buffer = io.BytesIO()
    arrays: dict[str, NDArray[np.generic]] = {
        f"scale{i}": f.numpy() for i, f in enumerate(encoded.features)
    }
    arrays["image_size"] = np.array(encoded.image_size, np.int64)
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def unpack_encoded(data: bytes) -> EncodedImage:
    """Raises ValueError when ``data`` is not what ``pack_encoded`` wrote."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            size = archive["image_size"]
            count = sum(1 for name in archive.files if name.startswith("scale"))
            maps = tuple(torch.from_numpy(archive[f"scale{i}"].copy()) for i in range(count))
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"not a packed feature set: {error}") from error
    if not maps or any(m.dtype != FEATURE_DTYPE or m.ndim != 3 for m in maps):
        raise ValueError("not a packed feature set: expected float16 (C, h, w) maps")
    return EncodedImage(maps, (int(size[0]), int(size[1])))
