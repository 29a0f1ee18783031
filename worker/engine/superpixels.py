"""Superpixel segmentation behind one function, pluggable by algorithm name."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from skimage.measure import label as label_components
from skimage.segmentation import felzenszwalb, slic

SuperpixelFn = Callable[[NDArray[np.uint8], int], NDArray[np.int32]]


def _validate_image(image: NDArray[np.uint8], size: int) -> None:
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got dtype {image.dtype}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image must be at least 2x2 pixels, got shape {image.shape}")
    if size < 2:
        raise ValueError(f"superpixel size must be at least 2 px, got {size}")


def relabel_contiguous(labels: NDArray[np.integer]) -> NDArray[np.int32]:
    """Map label values to 0..n-1, keeping their sorted order."""
    _, inverse = np.unique(labels, return_inverse=True)
    contiguous: NDArray[np.int32] = inverse.reshape(labels.shape).astype(np.int32)
    return contiguous


def slic_superpixels(image: NDArray[np.uint8], size: int) -> NDArray[np.int32]:
    """SLIC in Lab colour with ``n_segments = H*W / size**2`` (DESIGN.md §1.1).

    image: (H, W, 3) uint8 RGB. Returns (H, W) int32 labels, contiguous 0..n-1.
    """
    height, width = image.shape[:2]
    n_segments = max(1, round(height * width / size**2))
    labels = slic(
        image,
        n_segments=n_segments,
        compactness=10.0,
        start_label=0,
        enforce_connectivity=True,
        convert2lab=True,
        channel_axis=-1,
    )
    return relabel_contiguous(labels)


def felzenszwalb_superpixels(image: NDArray[np.uint8], size: int) -> NDArray[np.int32]:
    """Graph-based segmentation; ``size**2`` is the minimum region area."""
    labels = felzenszwalb(image, scale=float(size * 4), sigma=0.8, min_size=size * size // 2)
    # Its graph is 8-connected; split diagonal-only regions so every superpixel is 4-connected.
    components = label_components(labels + 1, connectivity=1, background=0)  # type: ignore[no-untyped-call]
    return relabel_contiguous(components)


ALGORITHMS: dict[str, SuperpixelFn] = {
    "slic": slic_superpixels,
    "felzenszwalb": felzenszwalb_superpixels,
}


def compute_superpixels(
    image: NDArray[np.uint8], size: int = 32, algorithm: str = "slic"
) -> NDArray[np.int32]:
    """Superpixels of one RGB image.

    image: (H, W, 3) uint8; size: nominal superpixel side in pixels.
    Returns (H, W) int32 labels, contiguous 0..n-1.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown superpixel algorithm {algorithm!r}; known: {sorted(ALGORITHMS)}")
    _validate_image(image, size)
    return ALGORITHMS[algorithm](image, size)
