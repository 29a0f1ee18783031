"""Export round-trips: what comes out re-imports equal to what was stored."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from backend.export.service import class_segments, rle_counts, rle_decode
from core.settings import Settings
from tests.backend.builders import World, grid_labels, png_bytes
from tests.backend.test_server import running_server

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


def _reference_segment(mask: np.ndarray, class_index: int) -> dict[str, object]:
    """One class's COCO entry the direct way: a boolean mask, its RLE, sum and extent."""
    binary = mask == class_index
    rows = np.flatnonzero(binary.any(axis=1))
    cols = np.flatnonzero(binary.any(axis=0))
    return {
        "category_id": class_index,
        "segmentation": {"size": list(mask.shape), "counts": rle_counts(binary)},
        "area": int(binary.sum()),
        "bbox": [
            int(cols[0]),
            int(rows[0]),
            int(cols[-1] - cols[0] + 1),
            int(rows[-1] - rows[0] + 1),
        ],
    }


def test_class_segments_from_one_pass_equal_per_class_masks() -> None:
    rng = np.random.default_rng(7)
    shapes = [(1, 1), (1, 9), (9, 1), (5, 7), (24, 32), (37, 3)]
    for height, width in shapes:
        for _ in range(20):
            # Blocky masks (long runs that wrap columns) and noisy ones (short runs).
            mask = rng.choice(np.array([0, 1, 4, 255], np.uint8), size=(height, width))
            if rng.random() < 0.5:
                mask = np.sort(mask, axis=None).reshape(height, width)
            expected = [
                _reference_segment(mask, value)
                for value in np.unique(mask).tolist()
                if value != 255
            ]
            assert list(class_segments(mask)) == expected
            for segment in expected:
                decoded = rle_decode(segment["segmentation"]["counts"], height, width)  # type: ignore[index]
                np.testing.assert_array_equal(decoded, mask == segment["category_id"])


def test_exports_keep_the_former_json_layout(client: TestClient, world: World) -> None:
    project, headers, _ = _labeled_project(client, world)
    url = f"/api/v1/projects/{project}/export"
    bundle = zipfile.ZipFile(io.BytesIO(client.get(url, headers=headers).content))
    manifest = bundle.read("manifest.json").decode()
    assert manifest == json.dumps(json.loads(manifest), indent=2)
    coco = client.get(url, params={"format": "coco"}, headers=headers).content
    assert (
        coco
        == json.dumps(
            json.loads(coco), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode()
    )


MANY = 130  # more than one database batch of the export


def test_export_of_many_images_streams_chunked_through_a_real_server(
    client: TestClient, world: World, settings: Settings, tmp_path: Path
) -> None:
    lead = world.user("lead@example.org")
    annotator = world.user("ann@example.org")
    project = world.project(lead, annotators=(annotator,))
    round_ = world.round(project)
    labels = grid_labels(WIDTH, HEIGHT, CELL)
    stored: dict[int, np.ndarray] = {}
    for index in range(MANY):
        image = world.image(project, width=WIDTH, height=HEIGHT, name=f"frame {index}.png")
        world.superpixel_grid(image, cell=CELL)
        cells = [index % 12, (index + 5) % 12]
        world.query(round_, image, cells)
        mask = np.full((HEIGHT, WIDTH), 255, np.uint8)
        mask[labels == cells[0]] = index % 3
        mask[labels == cells[1]] = (index + 1) % 3
        _label(client, project, image, annotator.headers, mask)
        stored[image] = mask
    env = {
        "TESSERA_DATABASE_URL": settings.resolved_database_url,
        "TESSERA_SECRET_KEY": settings.secret_key,
    }
    with running_server(env, tmp_path / "server.log") as base:
        url = f"{base}/api/v1/projects/{project}/export"
        with httpx.stream("GET", url, headers=lead.headers, timeout=60) as response:
            assert response.status_code == 200
            assert response.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in response.headers
            zip_chunks = list(response.iter_raw())
        with httpx.stream(
            "GET", url, params={"format": "coco"}, headers=lead.headers, timeout=60
        ) as response:
            assert response.headers["transfer-encoding"] == "chunked"
            coco_chunks = list(response.iter_raw())
    # Images go out batch by batch, not as one body at the end.
    assert len(zip_chunks) > 1
    assert len(coco_chunks) > 1
    bundle = zipfile.ZipFile(io.BytesIO(b"".join(zip_chunks)))
    assert bundle.testzip() is None
    manifest = json.loads(bundle.read("manifest.json"))
    assert [entry["image_id"] for entry in manifest["images"]] == sorted(stored)
    for entry in manifest["images"]:
        exported = np.asarray(PILImage.open(io.BytesIO(bundle.read(entry["mask"]))))
        np.testing.assert_array_equal(exported, stored[entry["image_id"]])
        assert [s["version"] for s in entry["submissions"]] == [1]
    coco = json.loads(b"".join(coco_chunks))
    assert [image["id"] for image in coco["images"]] == sorted(stored)
    assert [a["id"] for a in coco["annotations"]] == list(range(1, 2 * MANY + 1))
    rebuilt = {image_id: np.full((HEIGHT, WIDTH), 255, np.uint8) for image_id in stored}
    for annotation in coco["annotations"]:
        binary = rle_decode(annotation["segmentation"]["counts"], HEIGHT, WIDTH)
        rebuilt[annotation["image_id"]][binary] = annotation["category_id"]
    for image_id, mask in stored.items():
        np.testing.assert_array_equal(rebuilt[image_id], mask)
