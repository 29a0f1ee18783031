"""Frozen-encoder features of a simulation's splits kept on disk, so repeated runs and the
parallel per-seed processes of a benchmark compute them once.

One ``.npz`` per split (no pickle): every map of every image, stacked per scale. Its name is a
hash of the encoder fingerprint (kind, weights, normalisation, image size, format version)
and of the images' pixels, so a changed encoder, scale or image is a new file, never a stale
hit. Processes that start together take a file lock: one computes, the others wait and load.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from worker.engine.features import EncodedImage, encode_images, encoder_fingerprint
from worker.engine.model import FEATURE_DTYPE, SegmentationModel


def feature_file(
    directory: Path, model: SegmentationModel, images: Sequence[NDArray[np.uint8]]
) -> Path:
    """Where ``images``' features under ``model``'s frozen encoder are (or will be) kept."""
    if not images:
        raise ValueError("no images to encode")
    digest = hashlib.sha256(encoder_fingerprint(model, images[0].shape[:2]).encode())
    for image in images:
        digest.update(str(image.shape).encode())
        digest.update(np.ascontiguousarray(image).data)
    return directory / f"features-{digest.hexdigest()[:32]}.npz"


def _save(path: Path, encoded: Sequence[EncodedImage]) -> None:
    arrays: dict[str, NDArray[np.generic]] = {
        f"scale{scale}": torch.stack([e.features[scale] for e in encoded]).numpy()
        for scale in range(len(encoded[0].features))
    }
    arrays["image_sizes"] = np.array([e.image_size for e in encoded], np.int64)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    with partial.open("wb") as handle:
        np.savez(handle, allow_pickle=False, **arrays)
    partial.replace(path)  # readers never see half a file


def _load(path: Path, count: int) -> list[EncodedImage]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            sizes = archive["image_sizes"]
            scales = sum(1 for name in archive.files if name.startswith("scale"))
            maps = [torch.from_numpy(archive[f"scale{i}"]) for i in range(scales)]
    except (OSError, KeyError, ValueError) as error:
        message = f"{path} is not a feature file (delete it to recompute): {error}"
        raise ValueError(message) from error
    if len(sizes) != count or any(m.dtype != FEATURE_DTYPE or m.shape[0] != count for m in maps):
        raise ValueError(f"{path} does not hold float16 features of {count} images")
    return [
        EncodedImage(tuple(m[index] for m in maps), (int(size[0]), int(size[1])))
        for index, size in enumerate(sizes)
    ]


def cached_encode(
    images: Sequence[NDArray[np.uint8]],
    model: SegmentationModel,
    device: torch.device,
    directory: Path | None,
) -> tuple[list[EncodedImage], bool]:
    """``encode_images`` through the store in ``directory`` (None: no store). Returns the
    features and whether they were read from the store."""
    if directory is None:
        return encode_images(model, images, device), False
    directory.mkdir(parents=True, exist_ok=True)
    path = feature_file(directory, model, images)
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if path.is_file():
            return _load(path, len(images)), True
        encoded = encode_images(model, images, device)
        _save(path, encoded)
        return encoded, False
