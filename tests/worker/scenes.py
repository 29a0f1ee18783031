"""A small generated project, made through the API: scenes with ground truth, uploaded."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Annotation
from tests.worker.conftest import Api
from worker.simulation.synthetic import CLASSES, generate_scene

HEIGHT, WIDTH = 48, 64


def _png(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class SceneProject:
    id: int
    pool: list[int]
    validation: list[int]


def create_scene_project(
    api: Api, *, pool: int = 10, validation: int = 4, seed: int = 0, **settings: Any
) -> SceneProject:
    """Uploads ``pool`` + ``validation`` generated scenes with their ground truth."""
    body = {
        "name": "Scenes",
        "classes": [
            {"name": c["name"], "colour": "#{:02x}{:02x}{:02x}".format(*c["color"])}
            for c in CLASSES
        ],
        "superpixel_size": 8,
        "mc_samples": 4,
        "initial_images": 4,
        "images_per_round": 4,
        # The tiny U-Net these tests were sized for; test_pretrained_model.py runs the
        # default pretrained model.
        "model_architecture": "unet",
        **settings,
    }
    project = api.post("/projects", expect=201, json=body)["id"]
    rng = np.random.default_rng(seed)
    ids: dict[str, list[int]] = {}
    for split, count in (("pool", pool), ("validation", validation)):
        scenes = [generate_scene(HEIGHT, WIDTH, rng) for _ in range(count)]
        files = [("files", (f"{split}{i}.png", _png(image))) for i, (image, _) in enumerate(scenes)]
        created = api.post(
            f"/projects/{project}/images", expect=201, files=files, data={"split": split}
        )["created"]
        ids[split] = [image["id"] for image in created]
        for image_id, (_, mask) in zip(ids[split], scenes, strict=True):
            response = api.client.put(
                f"/api/v1/projects/{project}/images/{image_id}/ground-truth",
                headers=api.headers,
                files={"file": ("truth.png", _png(mask))},
            )
            assert response.status_code == 200, response.text
    return SceneProject(project, ids["pool"], ids["validation"])


def annotation_fingerprints(factory: sessionmaker[Session]) -> dict[int, tuple[int, str]]:
    """image id -> (version, SHA-256 of the stored mask) for every annotation."""
    with factory() as session:
        rows = session.execute(
            select(Annotation.image_id, Annotation.version, Annotation.mask_png)
        ).all()
    return {
        image_id: (version, hashlib.sha256(png or b"").hexdigest())
        for image_id, version, png in rows
    }
