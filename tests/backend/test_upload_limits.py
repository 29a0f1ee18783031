"""Upload limits sized for the worker (issue 13): pixels per image and per upload, refused
with the setting named and nothing stored."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Image
from tests.backend.builders import World, png_bytes, rgb_image
from tests.backend.test_upload_refusals import png_header_only


def _upload(
    client: TestClient, project: int, headers: dict[str, str], *files: tuple[str, bytes]
) -> tuple[int, str]:
    response = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", (name, data, "image/png")) for name, data in files],
        headers=headers,
    )
    return response.status_code, response.text


def _stored(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(Image)) or 0)


def test_upload_over_the_pixel_work_limit_is_refused_with_nothing_stored(
    app: FastAPI, client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"max_upload_pixels": 3000})
    lead = world.user("lead@example.org")
    project = world.project(lead)
    images = [(f"tile{i}.png", png_bytes(rgb_image(40, 40, seed=i))) for i in range(3)]
    status, text = _upload(client, project, lead.headers, *images)
    assert status == 413
    assert "tile1.png: the upload's images reach 3200 pixels together" in text
    assert "limit of 3000 per upload (TESSERA_MAX_UPLOAD_PIXELS" in text
    assert _stored(session_factory) == 0
    # Sent in uploads under the limit, the same images are accepted.
    assert _upload(client, project, lead.headers, images[0])[0] == 201
    assert _upload(client, project, lead.headers, *images[1:2])[0] == 201
    assert _stored(session_factory) == 2


def test_image_over_the_pixel_cap_is_refused_naming_the_setting(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    # small_limits caps images at 2 Mpx; the header alone decides, nothing is decoded.
    status, text = _upload(
        client,
        project,
        lead.headers,
        ("fine.png", png_bytes(rgb_image(16, 12, seed=1))),
        ("wide.png", png_header_only(7000, 7000)),
    )
    assert status == 413
    assert "wide.png: 7000x7000 = 49000000 pixels exceeds the limit of 2000000 per image" in text
    assert "TESSERA_MAX_IMAGE_PIXELS" in text
    assert _stored(session_factory) == 0
