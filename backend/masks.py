"""Partial masks as stored: greyscale PNG, pixel = class index or 255 (unlabeled)."""

from __future__ import annotations

import io
from typing import Final

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

UNLABELED: Final = 255


def empty_mask(width: int, height: int) -> NDArray[np.uint8]:
    return np.full((height, width), UNLABELED, dtype=np.uint8)


def encode_mask_png(mask: NDArray[np.uint8]) -> bytes:
    """mask: (H, W) uint8 -> PNG bytes (mode L)."""
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"mask must be (H, W) uint8, got {mask.shape} {mask.dtype}")
    buffer = io.BytesIO()
    PILImage.fromarray(mask, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def decode_stored_mask(png: bytes | None, width: int, height: int) -> NDArray[np.uint8]:
    """A stored mask (trusted: it passed validation when saved); None means all unlabeled."""
    if png is None:
        return empty_mask(width, height)
    with PILImage.open(io.BytesIO(png)) as image:
        return np.asarray(image, dtype=np.uint8).copy()
