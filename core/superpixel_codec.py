"""The compact superpixel-map encoding shared by the database, the API and the browser.

Body: zlib-compressed (RFC 1950) raw little-endian integers, row-major, shape (height, width);
dtype ``uint16`` when there are at most 65,536 superpixels, else ``int32``. The API sends the
stored bytes unchanged with headers ``X-Superpixel-Width``, ``-Height``, ``-Dtype`` and
``-Count``. In a browser: ``new Response(body.pipeThrough(new DecompressionStream("deflate")))``
then ``new Uint16Array(buffer)``. Labels run 0..count-1.
"""

from __future__ import annotations

import zlib

import numpy as np
from numpy.typing import NDArray

_DTYPES: dict[str, np.dtype[np.uint16] | np.dtype[np.int32]] = {
    "uint16": np.dtype("<u2"),
    "int32": np.dtype("<i4"),
}


def encode_superpixels(labels: NDArray[np.integer]) -> tuple[str, bytes, int]:
    """labels: (H, W) ints 0..n-1 -> (dtype name, zlib bytes, n)."""
    if labels.ndim != 2:
        raise ValueError(f"superpixel labels must be (H, W), got shape {labels.shape}")
    count = int(labels.max()) + 1 if labels.size else 0
    if labels.size and int(labels.min()) < 0:
        raise ValueError("superpixel labels must be non-negative")
    dtype_name = "uint16" if count <= 65_536 else "int32"
    # zlib reads the array's own buffer: no bytes copy of a full-size map.
    raw = np.ascontiguousarray(labels, dtype=_DTYPES[dtype_name])
    return dtype_name, zlib.compress(raw.data, 6), count


def decode_superpixels(blob: bytes, dtype_name: str, width: int, height: int) -> NDArray[np.int32]:
    """The (H, W) int32 labels of an encoded map."""
    raw = zlib.decompress(blob)
    labels = np.frombuffer(raw, dtype=np.uint8).view(_DTYPES[dtype_name])
    decoded: NDArray[np.int32] = labels.reshape(height, width).astype(np.int32)
    return decoded
