"""Export round-trips: what comes out re-imports equal to what was stored."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from backend.export.service import rle_counts, rle_decode
from tests.backend.builders import World, grid_labels, png_bytes

WIDTH, HEIGHT, CELL = 32, 24, 8


def _label(
    client: TestClient, project: int, image: int, headers: dict[str, str], mask: np.ndarray
) -> None:
    response = client.put(
        f"/api/v1/projects/{project}/images/{image}/mask",
        content=png_bytes(mask),
        params={"clicks": 2, "seconds": 1.5, "done": True},
        headers={**headers, "If-Match": '"0"', "Content-Type": "image/png"},
    )
    assert response.status_code == 200, response.text


def _labeled_project(
    client: TestClient, world: World
) -> tuple[int, dict[str, str], dict[int, np.ndarray]]:
    lead = world.user("lead@example.org")
    annotator = world.user("ann@example.org")
    project = world.project(lead, annotators=(annotator,))
    round_ = world.round(project)
    stored: dict[int, np.ndarray] = {}
    labels = grid_labels(WIDTH, HEIGHT, CELL)
    for seed in range(3):
        image = world.image(project, width=WIDTH, height=HEIGHT, name=f"street {seed}.png")
        world.superpixel_grid(image, cell=CELL)
        world.query(round_, image, [seed, seed + 4])
        mask = np.full((HEIGHT, WIDTH), 255, np.uint8)
        mask[labels == seed] = seed % 3
        mask[labels == seed + 4] = (seed + 1) % 3
        _label(client, project, image, annotator.headers, mask)
        stored[image] = mask
    world.image(project, name="untouched.png")  # stays unlabeled
    return project, lead.headers, stored


def test_zip_export_round_trips_masks_with_provenance(client: TestClient, world: World) -> None:
    project, headers, stored = _labeled_project(client, world)
    response = client.get(f"/api/v1/projects/{project}/export", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    bundle = zipfile.ZipFile(io.BytesIO(response.content))
    classes = json.loads(bundle.read("classes.json"))
    assert [c["name"] for c in classes] == ["sky", "road", "car"]
    manifest = json.loads(bundle.read("manifest.json"))
    assert manifest["unlabeled_value"] == 255
    assert manifest["project"]["settings"]["superpixel_size"] == 32
    by_id = {entry["image_id"]: entry for entry in manifest["images"]}
    assert len(by_id) == 4
    for image_id, mask in stored.items():
        entry = by_id[image_id]
        exported = np.asarray(PILImage.open(io.BytesIO(bundle.read(entry["mask"]))))
        np.testing.assert_array_equal(exported, mask)
        [submission] = entry["submissions"]
        assert submission["user"] == "ann@example.org"
        assert submission["round"] == 1
        assert submission["superpixel_ids"] == sorted(
            {int(s) for s in np.unique(grid_labels(WIDTH, HEIGHT, CELL)[mask != 255])}
        )
    untouched = next(e for e in manifest["images"] if e["filename"] == "untouched.png")
    assert untouched["mask"] is None
    assert all(
        name.startswith(("masks/", "classes.json", "manifest.json")) for name in bundle.namelist()
    )


def test_exported_masks_reimport_as_ground_truth_unchanged(
    client: TestClient, world: World
) -> None:
    project, headers, stored = _labeled_project(client, world)
    bundle = zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/v1/projects/{project}/export", headers=headers).content)
    )
    manifest = json.loads(bundle.read("manifest.json"))
    for entry in manifest["images"]:
        if entry["mask"] is None:
            continue
        url = f"/api/v1/projects/{project}/images/{entry['image_id']}/ground-truth"
        response = client.put(
            url, files={"file": ("m.png", bundle.read(entry["mask"]), "image/png")}, headers=headers
        )
        assert response.status_code == 200, response.text
        served = np.asarray(PILImage.open(io.BytesIO(client.get(url, headers=headers).content)))
        np.testing.assert_array_equal(served, stored[entry["image_id"]])


def test_coco_export_decodes_to_the_stored_masks(client: TestClient, world: World) -> None:
    project, headers, stored = _labeled_project(client, world)
    response = client.get(
        f"/api/v1/projects/{project}/export", params={"format": "coco"}, headers=headers
    )
    assert response.status_code == 200
    coco = response.json()
    assert [c["id"] for c in coco["categories"]] == [0, 1, 2]
    rebuilt = {image["id"]: np.full((HEIGHT, WIDTH), 255, np.uint8) for image in coco["images"]}
    for annotation in coco["annotations"]:
        height, width = annotation["segmentation"]["size"]
        binary = rle_decode(annotation["segmentation"]["counts"], height, width)
        assert annotation["area"] == int(binary.sum())
        rebuilt[annotation["image_id"]][binary] = annotation["category_id"]
    for image_id, mask in stored.items():
        np.testing.assert_array_equal(rebuilt[image_id], mask)


def test_rle_counts_follow_coco_column_major_zeros_first() -> None:
    binary = np.array([[1, 0], [1, 1]], dtype=bool)
    # Column-major: 1, 1, 0, 1 -> zero run of 0, then 2 ones, 1 zero, 1 one.
    assert rle_counts(binary) == [0, 2, 1, 1]
    np.testing.assert_array_equal(rle_decode([0, 2, 1, 1], 2, 2), binary)
