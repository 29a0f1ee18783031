"""Every upload refusal, each with a crafted file: status, message, and nothing stored.

Limits come from ``small_limits`` in conftest: 2 MiB per file, 2 Mpx, 20 zip entries,
8 MiB uncompressed per archive.
"""

from __future__ import annotations

import functools
import io
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Annotation, Image
from tests.backend.builders import Account, World, png_bytes, rgb_image


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge size: a decompression bomb's calling card."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    scanline = b"\x00" * (width + 1)  # one filter byte + one grey row
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanline * 2))
        + _chunk(b"IEND", b"")
    )


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


GOOD = png_bytes(rgb_image(16, 12, seed=1))


def _zip_bomb() -> bytes:
    # 12 MiB of zeros deflates to ~12 KiB; the archive limit is 8 MiB.
    return zip_bytes({"bomb.png": b"\x00" * (12 * 1024 * 1024)})


def _lying_zip() -> bytes:
    """A zip whose headers claim 10 bytes for an entry that inflates to 4 MiB."""
    data = bytearray(zip_bytes({"liar.png": b"\x00" * (4 * 1024 * 1024)}))
    true_size = struct.pack("<I", 4 * 1024 * 1024)
    fake_size = struct.pack("<I", 10)
    # Uncompressed size sits at offset 22 of the local header and 24 of the central one.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    assert data[local + 22 : local + 26] == true_size
    assert data[central + 24 : central + 28] == true_size
    data[local + 22 : local + 26] = fake_size
    data[central + 24 : central + 28] = fake_size
    return bytes(data)


def _encrypted_zip() -> bytes:
    """A zip whose entry is flagged as encrypted (Python cannot write real ZipCrypto)."""
    data = bytearray(zip_bytes({"secret.png": GOOD}))
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 6] |= 0x1  # general purpose flag, bit 0 = encrypted
    data[central + 8] |= 0x1
    return bytes(data)


@functools.cache
def _big_noise_png() -> bytes:
    data = png_bytes(rgb_image(800, 800, seed=4))  # incompressible: ~1.9 MiB, under 2 MiB
    assert 1_800_000 < len(data) < 2 * 1024 * 1024
    return data


def _truncated_png() -> bytes:
    data = png_bytes(rgb_image(64, 64, seed=3))
    return data[: len(data) // 2]


IMAGE_REFUSALS: dict[str, tuple[Callable[[], list[tuple[str, bytes]]], int, str]] = {
    "text renamed to .png": (
        lambda: [("photo.png", b"this is not an image at all")],
        415,
        "photo.png: not an image file",
    ),
    "gif is not an accepted format": (
        lambda: [("anim.png", encoded(np.zeros((8, 8), np.uint8), "GIF"))],
        415,
        "anim.png: GIF images are not accepted",
    ),
    "over the byte limit": (
        lambda: [("huge.png", png_bytes(rgb_image(1000, 800, seed=2)))],
        413,
        "huge.png: larger than the limit of 2097152 bytes",
    ),
    "all files together over the inflate limit": (
        lambda: [(f"big{i}.png", _big_noise_png()) for i in range(5)],
        413,
        "the upload expands past 8388608 bytes",
    ),
    "pixel bomb under Pillow's own guard": (
        lambda: [("bomb.png", png_header_only(5_000, 5_000))],
        413,
        "decompression bomb guard",
    ),
    "pixel bomb over Pillow's own guard": (
        lambda: [("bigbomb.png", png_header_only(100_000, 100_000))],
        413,
        "bigbomb.png: refused as a decompression bomb",
    ),
    "truncated image data": (
        lambda: [("cut.png", _truncated_png())],
        422,
        "cut.png: the image data is corrupt or truncated",
    ),
    "empty file": (lambda: [("empty.png", b"")], 422, "empty.png: the file is empty"),
    "zip with '..' entry": (
        lambda: [("up.zip", zip_bytes({"../evil.png": GOOD}))],
        422,
        "points outside the archive",
    ),
    "zip with absolute path": (
        lambda: [("abs.zip", zip_bytes({"/etc/evil.png": GOOD}))],
        422,
        "has an absolute path",
    ),
    "zip bomb": (lambda: [("bomb.zip", _zip_bomb())], 413, "zip bomb guard"),
    "zip whose headers lie about sizes": (
        lambda: [("liar.zip", _lying_zip())],
        422,
        "cannot be extracted",
    ),
    "encrypted zip entry": (
        lambda: [("locked.zip", _encrypted_zip())],
        422,
        "entry 'secret.png' is encrypted",
    ),
    "not a readable zip": (
        lambda: [("broken.zip", b"PK\x03\x04" + b"\x00" * 40)],
        422,
        "broken.zip: not a readable zip archive",
    ),
    "too many zip entries": (
        lambda: [("many.zip", zip_bytes({f"{i}.png": GOOD for i in range(21)}))],
        413,
        "21 entries exceeds the limit of 20",
    ),
    "nested zip by name": (
        lambda: [("outer.zip", zip_bytes({"inner.zip": zip_bytes({"a.png": GOOD})}))],
        422,
        "nested archives are not accepted",
    ),
    "nested zip disguised as png": (
        lambda: [("outer.zip", zip_bytes({"inner.png": zip_bytes({"a.png": GOOD})}))],
        422,
        "nested archives are not accepted",
    ),
    "one bad file refuses the whole request": (
        lambda: [("good.png", GOOD), ("bad.png", b"GIF89a nonsense")],
        415,
        "bad.png",
    ),
}


def _state(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    with factory() as session:
        return (
            session.scalar(select(func.count()).select_from(Image)) or 0,
            session.scalar(select(func.count()).select_from(Annotation)) or 0,
            session.scalar(
                select(func.count()).select_from(Image).where(Image.ground_truth_png.is_not(None))
            )
            or 0,
        )


@pytest.fixture
def lead_project(world: World) -> tuple[Account, int]:
    lead = world.user("lead@example.org")
    return lead, world.project(lead)


@pytest.mark.parametrize("case", list(IMAGE_REFUSALS))
def test_image_upload_refused(
    case: str,
    client: TestClient,
    session_factory: sessionmaker[Session],
    lead_project: tuple[Account, int],
) -> None:
    lead, project = lead_project
    files_factory, status_code, message = IMAGE_REFUSALS[case]
    before = _state(session_factory)
    response = client.post(
        f"/api/v1/projects/{project}/images",
        files=[
            ("files", (name, data, "application/octet-stream")) for name, data in files_factory()
        ],
        headers=lead.headers,
    )
    assert response.status_code == status_code, response.text
    assert message in response.json()["detail"]
    assert _state(session_factory) == before


def test_request_over_the_size_limit_is_refused_before_parsing(
    app: FastAPI,
    client: TestClient,
    session_factory: sessionmaker[Session],
    lead_project: tuple[Account, int],
) -> None:
    lead, project = lead_project
    app.state.settings = app.state.settings.model_copy(update={"max_request_bytes": 1000})
    response = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", ("a.png", GOOD + b"\x00" * 2000, "image/png"))],
        headers=lead.headers,
    )
    assert response.status_code == 413
    assert "exceeds the limit of 1000" in response.json()["detail"]
    assert _state(session_factory) == (0, 0, 0)


def test_duplicates_are_reported_not_stored_twice(
    client: TestClient, session_factory: sessionmaker[Session], lead_project: tuple[Account, int]
) -> None:
    lead, project = lead_project
    url = f"/api/v1/projects/{project}/images"
    first = client.post(
        url,
        files=[
            ("files", ("a.png", GOOD, "image/png")),
            ("files", ("again.png", GOOD, "image/png")),
        ],
        headers=lead.headers,
    )
    assert first.status_code == 201
    body = first.json()
    assert len(body["created"]) == 1
    assert body["duplicates"] == [
        {"filename": "again.png", "sha256": body["created"][0]["sha256"], "existing_image_id": None}
    ]
    stored_id = body["created"][0]["id"]
    second = client.post(
        url,
        files=[("files", ("b.zip", zip_bytes({"dir/copy.png": GOOD}), "application/zip"))],
        headers=lead.headers,
    )
    assert second.status_code == 201
    assert second.json()["created"] == []
    assert second.json()["duplicates"][0]["existing_image_id"] == stored_id
    assert second.json()["duplicates"][0]["filename"] == "copy.png"
    assert _state(session_factory) == (1, 1, 0)


def test_uploaded_names_are_display_strings_not_paths(
    client: TestClient, settings: object, lead_project: tuple[Account, int], tmp_path: object
) -> None:
    lead, project = lead_project
    response = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", ("../../etc/passwd.png", GOOD, "image/png"))],
        headers=lead.headers,
    )
    assert response.status_code == 201
    assert response.json()["created"][0]["filename"] == "passwd.png"


def test_zip_upload_expands_and_skips_os_junk(
    client: TestClient, lead_project: tuple[Account, int]
) -> None:
    lead, project = lead_project
    archive = zip_bytes(
        {
            "set/a.png": png_bytes(rgb_image(16, 12, seed=5)),
            "set/b.jpg": encoded(rgb_image(16, 12, seed=6), "JPEG"),
            "__MACOSX/set/._a.png": b"junk",
            ".DS_Store": b"junk",
        }
    )
    response = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", ("set.zip", archive, "application/zip"))],
        data={"split": "validation"},
        headers=lead.headers,
    )
    assert response.status_code == 201, response.text
    created = response.json()["created"]
    assert [(i["filename"], i["content_type"], i["split"]) for i in created] == [
        ("a.png", "image/png", "validation"),
        ("b.jpg", "image/jpeg", "validation"),
    ]


MASK_REFUSALS: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "wrong size": (
        lambda: png_bytes(np.zeros((10, 10), np.uint8)),
        422,
        "the mask is 10x10 but the image is 32x24",
    ),
    "values that are not classes": (
        lambda: png_bytes(np.full((24, 32), 7, np.uint8)),
        422,
        "768 pixels have values [7] that are not class indices",
    ),
    "lossy format": (
        lambda: encoded(np.zeros((24, 32), np.uint8), "JPEG"),
        415,
        "masks must be lossless",
    ),
    "colour image": (
        lambda: png_bytes(np.zeros((24, 32, 3), np.uint8)),
        422,
        "must be single-channel",
    ),
    "not an image": (lambda: b"%PDF-1.4 not a mask", 415, "not an image file"),
    "pixel bomb": (lambda: png_header_only(5_000, 5_000), 413, "decompression bomb"),
}


@pytest.mark.parametrize("case", list(MASK_REFUSALS))
def test_ground_truth_refused(
    case: str,
    client: TestClient,
    world: World,
    session_factory: sessionmaker[Session],
    lead_project: tuple[Account, int],
) -> None:
    lead, project = lead_project
    image = world.image(project, width=32, height=24)
    data_factory, status_code, message = MASK_REFUSALS[case]
    response = client.put(
        f"/api/v1/projects/{project}/images/{image}/ground-truth",
        files={"file": ("truth.png", data_factory(), "image/png")},
        headers=lead.headers,
    )
    assert response.status_code == status_code, response.text
    assert message in response.json()["detail"]
    assert _state(session_factory) == (1, 1, 0)


def test_ground_truth_accepted_and_served_back(
    client: TestClient, world: World, lead_project: tuple[Account, int]
) -> None:
    lead, project = lead_project
    image = world.image(project, width=32, height=24)
    truth = np.zeros((24, 32), np.uint8)
    truth[:, 16:] = 2
    truth[0, 0] = 255
    # A palette PNG (as VOC-style datasets ship) carries the indices directly.
    palette = PILImage.fromarray(truth, mode="P")
    palette.putpalette([channel for index in range(256) for channel in (index, 0, 255 - index)])
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    url = f"/api/v1/projects/{project}/images/{image}/ground-truth"
    response = client.put(
        url, files={"file": ("t.png", buffer.getvalue(), "image/png")}, headers=lead.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["has_ground_truth"] is True
    served = np.asarray(PILImage.open(io.BytesIO(client.get(url, headers=lead.headers).content)))
    np.testing.assert_array_equal(served, truth)


def test_exif_rotated_photo_is_stored_upright(
    client: TestClient, lead_project: tuple[Account, int]
) -> None:
    lead, project = lead_project
    pixels = rgb_image(40, 20, seed=8)  # 40 wide, 20 high as encoded
    exif = PILImage.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="JPEG", exif=exif.tobytes())
    response = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", ("phone.jpg", buffer.getvalue(), "image/jpeg"))],
        headers=lead.headers,
    )
    assert response.status_code == 201, response.text
    [image] = response.json()["created"]
    assert (image["width"], image["height"], image["content_type"]) == (20, 40, "image/png")
    stored = client.get(
        f"/api/v1/projects/{project}/images/{image['id']}/file", headers=lead.headers
    )
    with PILImage.open(io.BytesIO(stored.content)) as upright:
        assert upright.size == (20, 40)


def test_simultaneous_uploads_of_one_image_store_it_once(
    app: FastAPI, session_factory: sessionmaker[Session], lead_project: tuple[Account, int]
) -> None:
    lead, project = lead_project
    data = png_bytes(rgb_image(64, 48, seed=12))
    barrier = threading.Barrier(3)
    statuses: list[int] = []

    def upload() -> None:
        client = TestClient(app)
        barrier.wait()
        response = client.post(
            f"/api/v1/projects/{project}/images",
            files=[("files", ("same.png", data, "image/png"))],
            headers=lead.headers,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=upload) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each loser either saw the stored image (a reported duplicate) or lost the insert race.
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    assert _state(session_factory) == (1, 1, 0)
