"""Generated street-like scenes with exact ground truth, for tests and the demo.

Each image has sky above a wavy horizon, road below, and textured discs and boxes; colours
jitter per object so the model has to learn more than one RGB value per class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

CLASSES = [
    {"id": 0, "name": "sky", "color": [70, 130, 180]},
    {"id": 1, "name": "road", "color": [128, 64, 128]},
    {"id": 2, "name": "disc", "color": [220, 20, 60]},
    {"id": 3, "name": "box", "color": [250, 170, 30]},
]
IGNORE_INDEX = 255
_BASE_COLOURS = np.array([[90, 150, 220], [110, 100, 110], [200, 60, 50], [60, 170, 70]], float)


def generate_scene(
    height: int, width: int, rng: np.random.Generator
) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """One (H, W, 3) uint8 image and its (H, W) uint8 mask."""
    rows, cols = np.mgrid[0:height, 0:width]
    phase, amplitude = rng.uniform(0, 2 * np.pi), rng.uniform(0.02, 0.08) * height
    horizon = height * rng.uniform(0.3, 0.6) + amplitude * np.sin(cols / width * 6 + phase)
    mask = np.where(rows < horizon, 0, 1).astype(np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        radius = rng.uniform(0.05, 0.15) * min(height, width)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        mask[(rows - cy) ** 2 + (cols - cx) ** 2 < radius**2] = 2
    for _ in range(int(rng.integers(1, 4))):
        h, w = rng.uniform(0.1, 0.3) * height, rng.uniform(0.1, 0.3) * width
        top, left = rng.uniform(0, height - h), rng.uniform(0, width - w)
        mask[(rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)] = 3
    colours = _BASE_COLOURS + rng.normal(0, 18, _BASE_COLOURS.shape)
    image = colours[mask] + rng.normal(0, 6, (height, width, 3))
    image += 12 * np.sin(rows / rng.uniform(3, 9))[..., None]  # a texture stripe
    # A thin void border, as real datasets have unlabeled pixels.
    mask[:1, :] = IGNORE_INDEX
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_dataset(
    root: Path,
    splits: dict[str, int],
    height: int = 64,
    width: int = 96,
    seed: int = 0,
) -> Path:
    """Write ``root/classes.json`` and ``root/SPLIT/{images,masks}`` with generated scenes."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.json").write_text(
        json.dumps({"ignore_index": IGNORE_INDEX, "classes": CLASSES}, indent=1)
    )
    for split, count in splits.items():
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, mask = generate_scene(height, width, rng)
            Image.fromarray(image).save(root / split / "images" / f"scene_{index:04d}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"scene_{index:04d}.png")
    return root
