"""Projects ready for labeling, made as a lead would (HTTP API) plus the seeded round."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage

from tests.e2e.scene import CLASSES, street_scene
from tests.e2e.seed import QueriedImage, seed_labeling_round
from tests.e2e.server import PASSWORD, Server


@dataclass(frozen=True)
class LabelingProject:
    project_id: int
    annotator: str  # email; the password is server.PASSWORD
    width: int
    height: int
    images: list[QueriedImage]
    truths: dict[int, NDArray[np.uint8]]  # image id -> true classes

    def class_colour(self, index: int) -> tuple[int, int, int]:
        hex_colour = CLASSES[index][1]
        return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


def png(array: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(array: NDArray[np.uint8]) -> bytes:
    """As a camera stores a photo (the noisy scene makes a PNG of it ~2 bytes per pixel)."""
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def labeling_project(
    server: Server,
    admin: httpx.Client,
    *,
    width: int = 480,
    height: int = 360,
    images: int = 1,
    superpixel_size: int = 32,
    image_format: str = "png",
) -> LabelingProject:
    """A new project with one new annotator and ``images`` queried street scenes, uploaded
    as ``image_format`` ("png", or "jpeg": lossy, the truth stays the scene's)."""
    encode, suffix = (jpeg, "jpg") if image_format == "jpeg" else (png, "png")
    unique = uuid.uuid4().hex[:8]
    annotator = f"ann-{unique}@e2e.example.org"
    admin.post(
        "/users", json={"email": annotator, "name": f"Ann {unique}", "password": PASSWORD}
    ).raise_for_status()
    project = admin.post(
        "/projects",
        json={
            "name": f"Streets {unique}",
            "classes": [{"name": name, "colour": colour} for name, colour in CLASSES],
            "superpixel_size": superpixel_size,
        },
    )
    project.raise_for_status()
    project_id = int(project.json()["id"])
    admin.post(
        f"/projects/{project_id}/members", json={"email": annotator, "role": "annotator"}
    ).raise_for_status()
    scenes = [street_scene(width, height, seed=k) for k in range(images)]
    upload = admin.post(
        f"/projects/{project_id}/images",
        files=[
            ("files", (f"street{k}.{suffix}", encode(rgb))) for k, (rgb, _) in enumerate(scenes)
        ],
        data={"split": "pool"},
    )
    upload.raise_for_status()
    created = upload.json()["created"]
    assert len(created) == images
    truths = {int(row["id"]): truth for row, (_, truth) in zip(created, scenes, strict=True)}
    queried = seed_labeling_round(server.database_url, project_id, truths)
    return LabelingProject(project_id, annotator, width, height, queried, truths)
