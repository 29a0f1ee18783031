"""The demo project: generated street-like scenes with exact ground truth (no download),
its classes and settings. ``bench/demo_round.py`` builds the same project."""

from __future__ import annotations

import io
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

from worker.simulation.synthetic import CLASSES, generate_scene

PROJECT_NAME = "Demo: street scenes"
PROJECT_MARK = "(made by tessera serve --demo)"
POOL_IMAGES = 40
VALIDATION_IMAGES = 10
SCENE_HEIGHT, SCENE_WIDTH = 192, 256
SCENE_SEED = 2026
PROJECT_SETTINGS: dict[str, Any] = {
    "superpixel_size": 16,
    "strategy": "dynamic",
    "mc_samples": 8,
    "initial_images": 4,
    "images_per_round": 4,
}

Scene = tuple[str, NDArray[np.uint8], NDArray[np.uint8]]


def demo_scenes() -> dict[str, list[Scene]]:
    """split -> [(filename, (H, W, 3) uint8 image, (H, W) uint8 true classes)], the same on
    every call (a fixed seed), so a resumed upload finds its duplicates."""
    rng = np.random.default_rng(SCENE_SEED)
    scenes: dict[str, list[Scene]] = {}
    for split, count in (("pool", POOL_IMAGES), ("validation", VALIDATION_IMAGES)):
        scenes[split] = []
        for index in range(count):
            image, truth = generate_scene(SCENE_HEIGHT, SCENE_WIDTH, rng)
            scenes[split].append((f"{split}-{index:03d}.png", image, truth))
    return scenes


def project_classes() -> list[dict[str, str]]:
    """The scenes' classes as ``POST /projects`` takes them."""
    return [
        {"name": str(c["name"]), "colour": "#" + bytes(cast(list[int], c["color"])).hex()}
        for c in CLASSES
    ]


def model_settings(model: str) -> dict[str, Any]:
    """The demo project's model: ``model`` with encoder zoom 2 for a pretrained encoder,
    since the scenes are small (256x192) and an ImageNet encoder sees their objects at a
    scale closer to its training when the image is upsampled 2x; a U-Net takes zoom 1."""
    return {"model_architecture": model, "encoder_zoom": 1 if model == "unet" else 2}


def project_body(name: str, description: str, model: str) -> dict[str, Any]:
    """The body of ``POST /projects`` that makes the demo project."""
    return {
        "name": name,
        "description": description,
        "classes": project_classes(),
        **PROJECT_SETTINGS,
        **model_settings(model),
    }


def png_bytes(array: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
