"""Previews of large images (issue 15): made at upload only for images over
TESSERA_LARGE_IMAGE_PIXELS, made on first request for images stored without one, served
with an ETag, and linked from the task."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.images.previews import PREVIEW_PIXELS, preview_size
from core.models import Image
from core.settings import Settings
from tests.backend.builders import Account, World

LARGE = (2400, 1800)  # 4.32 Mpx: over the 4 Mpx default, downscaled to 1632x1224
SMALL = (480, 360)


def jpeg_bytes(width: int, height: int, orientation: int = 1) -> bytes:
    """A smooth picture (small as JPEG, so it passes the tests' 2 MB upload cap), with an
    EXIF ``orientation`` tag unless it is 1."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    rgb = np.stack(np.broadcast_arrays(x, y, (x + y) / 2), axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    exif = PILImage.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    PILImage.fromarray(rgb).save(buffer, format="JPEG", quality=80, exif=exif)
    return buffer.getvalue()


def test_preview_size_is_the_annotators() -> None:
    # The same sizes as previewSize in frontend/src/annotator/viewport.test.ts.
    assert preview_size(4000, 3000) == (1632, 1224)
    assert preview_size(640, 480) == (640, 480)


@pytest.fixture
def large_images_allowed(app: FastAPI, settings: Settings) -> Settings:
    """The production threshold, and the tests' pixel cap raised to let a large image in."""
    app.state.settings = settings.model_copy(
        update={"max_image_pixels": 5_000_000, "large_image_pixels": 4_000_000}
    )
    value: Settings = app.state.settings
    return value


def upload(client: TestClient, lead: Account, project: int, *sizes: tuple[int, int]) -> list[int]:
    files = [("files", (f"{w}x{h}.jpg", jpeg_bytes(w, h), "image/jpeg")) for w, h in sizes]
    response = client.post(f"/api/v1/projects/{project}/images", files=files, headers=lead.headers)
    assert response.status_code == 201, response.text
    return [image["id"] for image in response.json()["created"]]


def stored_preview(factory: sessionmaker[Session], image_id: int) -> bytes | None:
    with factory() as session:
        return session.scalar(select(Image.preview_jpeg).where(Image.id == image_id))


def preview_url(project: int, image_id: int) -> str:
    return f"/api/v1/projects/{project}/images/{image_id}/preview"


@pytest.mark.usefixtures("large_images_allowed")
def test_upload_stores_a_downscaled_jpeg_preview_only_for_large_images(
    world: World, client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    large, small = upload(client, lead, project, LARGE, SMALL)

    preview = stored_preview(session_factory, large)
    assert preview is not None
    with PILImage.open(io.BytesIO(preview)) as decoded:
        assert decoded.format == "JPEG"
        assert decoded.mode == "RGB"
        width, height = decoded.size
    assert width * height <= PREVIEW_PIXELS
    assert (width, height) == (1632, 1224)  # the aspect kept, as big as the cap allows
    assert stored_preview(session_factory, small) is None

    served = client.get(preview_url(project, large), headers=lead.headers)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.content == preview


@pytest.mark.usefixtures("large_images_allowed")
def test_preview_of_a_rotated_photo_is_upright(
    world: World, client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    files = [("files", ("portrait.jpg", jpeg_bytes(*LARGE, orientation=6), "image/jpeg"))]
    response = client.post(f"/api/v1/projects/{project}/images", files=files, headers=lead.headers)
    assert response.status_code == 201, response.text
    (image,) = response.json()["created"]
    assert (image["width"], image["height"]) == (1800, 2400)  # stored upright

    preview = stored_preview(session_factory, image["id"])
    assert preview is not None
    with PILImage.open(io.BytesIO(preview)) as decoded:
        assert decoded.size == (1224, 1632)


@pytest.mark.usefixtures("large_images_allowed")
def test_image_stored_without_preview_gets_one_on_first_request(
    world: World, client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    (large,) = upload(client, lead, project, LARGE)
    with session_factory() as session:  # as stored before migration 0013
        session.execute(update(Image).where(Image.id == large).values(preview_jpeg=None))
        session.commit()

    served = client.get(preview_url(project, large), headers=lead.headers)

    assert served.status_code == 200
    with PILImage.open(io.BytesIO(served.content)) as decoded:
        assert (decoded.format, decoded.size) == ("JPEG", (1632, 1224))
    assert stored_preview(session_factory, large) == served.content
    again = client.get(preview_url(project, large), headers=lead.headers)
    assert again.content == served.content


@pytest.mark.usefixtures("large_images_allowed")
def test_preview_revalidates_with_its_etag(world: World, client: TestClient) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    (large,) = upload(client, lead, project, LARGE)
    first = client.get(preview_url(project, large), headers=lead.headers)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, max-age=86400"
    file_etag = client.get(
        f"/api/v1/projects/{project}/images/{large}/file", headers=lead.headers
    ).headers["etag"]
    assert etag != file_etag  # a cached full image never answers for its preview

    cached = client.get(
        preview_url(project, large), headers={**lead.headers, "If-None-Match": etag}
    )
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    stale = client.get(
        preview_url(project, large), headers={**lead.headers, "If-None-Match": file_etag}
    )
    assert stale.status_code == 200


@pytest.mark.usefixtures("large_images_allowed")
def test_small_image_has_no_preview_and_says_so(world: World, client: TestClient) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    (small,) = upload(client, lead, project, SMALL)

    response = client.get(preview_url(project, small), headers=lead.headers)

    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "480x360" in detail and "TESSERA_LARGE_IMAGE_PIXELS" in detail
    missing = client.get(preview_url(project, small + 100), headers=lead.headers)
    assert missing.status_code == 404


def test_preview_is_for_project_members_only(world: World, client: TestClient) -> None:
    lead, stranger = world.user("lead@example.org"), world.user("stranger@example.org")
    project = world.project(lead)
    image = world.image(project)
    response = client.get(preview_url(project, image), headers=stranger.headers)
    assert response.status_code in (403, 404)


def test_task_links_the_preview_of_a_large_image_only(
    app: FastAPI, world: World, client: TestClient, settings: Settings
) -> None:
    # A low threshold, so that the builders' small images count as large.
    app.state.settings = world.settings = settings.model_copy(update={"large_image_pixels": 700})
    lead, annotator = world.user("lead@example.org"), world.user("ann@example.org")
    project = world.project(lead, annotators=(annotator,))
    round_ = world.round(project)
    large = world.image(project, width=32, height=24)  # 768 pixels
    small = world.image(project, width=24, height=24)  # 576 pixels
    for image in (large, small):
        world.superpixel_grid(image, cell=8)
        world.query(round_, image, [0, 1])
    links: dict[int, dict[str, str | None]] = {}
    seen: list[int] = []
    for _ in range(2):
        task = client.post(
            f"/api/v1/projects/{project}/tasks/next",
            params={"exclude": seen},
            headers=annotator.headers,
        )
        assert task.status_code == 200, task.text
        body = task.json()
        links[body["image_id"]] = body["links"]
        seen.append(body["query_id"])
        client.post(
            f"/api/v1/projects/{project}/tasks/{body['query_id']}/release",
            headers=annotator.headers,
        )

    assert links[large]["preview"] == preview_url(project, large)
    assert links[small]["preview"] is None
    served = client.get(links[large]["preview"], headers=annotator.headers)
    with PILImage.open(io.BytesIO(served.content)) as decoded:
        assert decoded.size == (32, 24)  # under the 2 Mpx cap: the image's own size
