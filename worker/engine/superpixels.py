"""Superpixel segmentation behind one function, pluggable by algorithm name."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from skimage.measure import label as label_components
from skimage.segmentation import felzenszwalb, slic

SuperpixelFn = Callable[[NDArray[np.uint8], float], NDArray[np.int32]]
ArrayT = TypeVar("ArrayT", bound=np.generic)


def _validate_image(image: NDArray[np.uint8], size: float) -> None:
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


def slic_superpixels(image: NDArray[np.uint8], size: float) -> NDArray[np.int32]:
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


def felzenszwalb_superpixels(image: NDArray[np.uint8], size: float) -> NDArray[np.int32]:
    """Graph-based segmentation; ``size**2`` is the minimum region area."""
    labels = felzenszwalb(image, scale=float(size * 4), sigma=0.8, min_size=int(size * size // 2))
    # Its graph is 8-connected; split diagonal-only regions so every superpixel is 4-connected.
    components = label_components(labels + 1, connectivity=1, background=0)  # type: ignore[no-untyped-call]
    return relabel_contiguous(components)


ALGORITHMS: dict[str, SuperpixelFn] = {
    "slic": slic_superpixels,
    "felzenszwalb": felzenszwalb_superpixels,
}


def compute_superpixels(
    image: NDArray[np.uint8], size: float = 32, algorithm: str = "slic"
) -> NDArray[np.int32]:
    """Superpixels of one RGB image.

    image: (H, W, 3) uint8; size: nominal superpixel side in pixels.
    Returns (H, W) int32 labels, contiguous 0..n-1.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown superpixel algorithm {algorithm!r}; known: {sorted(ALGORITHMS)}")
    _validate_image(image, size)
    return ALGORITHMS[algorithm](image, size)


def work_shape(height: int, width: int, max_pixels: int) -> tuple[int, int]:
    """The (height, width) an image is processed at: its own size when it has at most
    ``max_pixels`` pixels, else scaled down with its aspect ratio kept to fit."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if max_pixels < 4:
        raise ValueError(f"max_pixels must be at least 4, got {max_pixels}")
    if height * width <= max_pixels:
        return height, width
    scale = math.sqrt(max_pixels / (height * width))
    small_height, small_width = math.floor(height * scale), math.floor(width * scale)
    # A thin strip keeps 2 px across and gives the rest of the budget to its length.
    if small_height < 2:
        return 2, min(width, max_pixels // 2)
    if small_width < 2:
        return min(height, max_pixels // 2), 2
    return small_height, small_width


def sample_nearest(array: NDArray[ArrayT], height: int, width: int) -> NDArray[ArrayT]:
    """(height, width) nearest-neighbour resampling of a (h, w) array, dtype kept: each
    output pixel takes the value under its centre (labels, masks, flags: never blended)."""
    if array.ndim != 2:
        raise ValueError(f"expected an (H, W) array, got shape {array.shape}")
    source_height, source_width = array.shape
    if (height, width) == (source_height, source_width):
        return array
    rows = (2 * np.arange(height, dtype=np.int64) + 1) * source_height // (2 * height)
    cols = (2 * np.arange(width, dtype=np.int64) + 1) * source_width // (2 * width)
    sampled: NDArray[ArrayT] = np.take(np.take(array, rows, axis=0), cols, axis=1)
    return sampled


def upsample_labels(labels: NDArray[np.integer], height: int, width: int) -> NDArray[np.integer]:
    """Nearest-neighbour enlargement of (h, w) labels to (height, width), dtype kept: every
    input pixel (and every label) survives and connected regions stay connected."""
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    small_height, small_width = labels.shape
    if height < small_height or width < small_width:
        raise ValueError(
            f"cannot upsample {small_height}x{small_width} labels to a smaller {height}x{width}"
        )
    return sample_nearest(labels, height, width)


def superpixels_from_downscaled(
    image: NDArray[np.uint8], height: int, width: int, size: float = 32, algorithm: str = "slic"
) -> NDArray[np.integer]:
    """Superpixels of a (height, width) image computed on its downscaled copy ``image``.

    image: (h, w, 3) uint8 with h <= height, w <= width, the same aspect ratio. ``size`` is
    the nominal side in full-resolution pixels, so the count of superpixels is what the full
    image would get (down to 2 px in the copy). Returns (height, width) labels 0..n-1, uint16
    when n <= 65,536 (else int32) to keep the full-size map small.
    """
    _validate_image(image, size)
    small_height, small_width = image.shape[:2]
    scale = math.sqrt(small_height * small_width / (height * width))
    labels = compute_superpixels(image, max(2.0, size * scale), algorithm)
    compact = labels.astype(np.uint16) if int(labels.max()) < 65_536 else labels
    return upsample_labels(compact, height, width)
