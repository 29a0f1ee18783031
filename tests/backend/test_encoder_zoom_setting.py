"""A project's encoder zoom (1 or 2) through the API and the database: create and PATCH,
422s naming the field, the recompute of cached features it causes, the CHECK constraint,
and migration 0015 up and down (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.migrate import downgrade_database, upgrade_database
from core.models import Image, ImageStatus, Job
from core.settings import Settings
from tests.backend.builders import Account, World
from tests.services import postgres_database


def _create(client: TestClient, lead: Account, **settings: Any) -> Response:
    response: Response = client.post(
        "/api/v1/projects", json={"name": "Fields", **settings}, headers=lead.headers
    )
    return response


def test_zoom_defaults_to_1_and_round_trips(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    headers = lead.headers
    created = _create(client, lead)
    assert created.status_code == 201, created.text
    assert created.json()["encoder_zoom"] == 1
    url = f"/api/v1/projects/{created.json()['id']}"

    changed = client.patch(url, json={"encoder_zoom": 2}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["encoder_zoom"] == 2
    assert client.get(url, headers=headers).json()["encoder_zoom"] == 2
    # Left out or null: kept.
    kept = client.patch(url, json={"mc_samples": 5, "encoder_zoom": None}, headers=headers)
    assert kept.json()["encoder_zoom"] == 2

    zoomed = client.post(
        "/api/v1/projects",
        json={"name": "Small", "model_architecture": "efficientnet_lite2", "encoder_zoom": 2},
        headers=headers,
    )
    assert zoomed.status_code == 201, zoomed.text
    assert (zoomed.json()["model_architecture"], zoomed.json()["encoder_zoom"]) == (
        "efficientnet_lite2",
        2,
    )
    listed = client.get("/api/v1/projects", headers=headers).json()
    assert sorted(p["encoder_zoom"] for p in listed) == [2, 2]


@pytest.mark.parametrize("zoom", [0, 3, 4, -1, 1.5, "2", False])
def test_other_zooms_are_422_naming_the_field(
    client: TestClient, world: World, zoom: object
) -> None:
    lead = world.user("lead@example.org")
    headers = lead.headers
    created = _create(client, lead, encoder_zoom=zoom)
    assert created.status_code == 422, created.text
    assert any(error["loc"][-1] == "encoder_zoom" for error in created.json()["detail"])
    assert client.get("/api/v1/projects", headers=headers).json() == []

    project = world.project(lead)
    url = f"/api/v1/projects/{project}"
    refused = client.patch(url, json={"encoder_zoom": zoom}, headers=headers)
    assert refused.status_code == 422, refused.text
    assert any(error["loc"][-1] == "encoder_zoom" for error in refused.json()["detail"])


def test_a_unet_takes_no_zoom(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    headers = lead.headers
    created = _create(client, lead, model_architecture="unet", encoder_zoom=2)
    assert created.status_code == 422, created.text
    assert "encoder_zoom 2" in created.json()["detail"], created.text
    assert "unet" in created.json()["detail"]
    assert client.get("/api/v1/projects", headers=headers).json() == []

    zoomed = client.post(
        "/api/v1/projects", json={"name": "Fields", "encoder_zoom": 2}, headers=headers
    ).json()
    url = f"/api/v1/projects/{zoomed['id']}"
    before = client.get(url, headers=headers).json()
    refused = client.patch(
        url, json={"model_architecture": "unet", "mc_samples": 3}, headers=headers
    )
    assert refused.status_code == 422, refused.text
    assert "encoder_zoom 2" in refused.json()["detail"]
    assert client.get(url, headers=headers).json() == before  # nothing stored
    assert (before["model_architecture"], before["encoder_zoom"]) == ("efficientnet_lite0", 2)

    both = client.patch(
        url, json={"model_architecture": "unet", "encoder_zoom": 1}, headers=headers
    )
    assert both.status_code == 200, both.text
    again = client.patch(url, json={"encoder_zoom": 2}, headers=headers)
    assert again.status_code == 422 and "encoder_zoom 2" in again.json()["detail"]


def _feature_jobs(factory: sessionmaker[Session], project_id: int) -> list[Job]:
    with factory() as session:
        return [
            job
            for job in session.scalars(
                select(Job).where(Job.project_id == project_id).order_by(Job.id)
            )
            if "recomputing encoder features" in (job.message or "")
        ]


def test_a_zoom_change_queues_the_features_recompute(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project_id = world.project(lead)
    ready = [world.image(project_id) for _ in range(3)]
    with session_factory() as session:
        for image_id in ready:
            image = session.get(Image, image_id)
            assert image is not None
            image.status = ImageStatus.ready
        session.commit()
    url = f"/api/v1/projects/{project_id}"

    assert client.patch(url, json={"encoder_zoom": 1}, headers=lead.headers).status_code == 200
    assert _feature_jobs(session_factory, project_id) == []  # unchanged: nothing stale

    assert client.patch(url, json={"encoder_zoom": 2}, headers=lead.headers).status_code == 200
    [job] = _feature_jobs(session_factory, project_id)
    assert sorted((job.payload or {})["image_ids"]) == ready

    assert client.patch(url, json={"encoder_zoom": 1}, headers=lead.headers).status_code == 200
    assert len(_feature_jobs(session_factory, project_id)) == 2


def test_the_database_refuses_other_zooms(
    world: World, session_factory: sessionmaker[Session]
) -> None:
    project_id = world.project(world.user("lead@example.org"))
    with session_factory() as session, pytest.raises(IntegrityError):
        session.execute(
            text("UPDATE projects SET encoder_zoom = 3 WHERE id = :id"), {"id": project_id}
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'zoom.db'}"
        return
    with postgres_database("tessera_zoom") as url:
        yield url


_OLD_PROJECT = (
    "INSERT INTO projects (name, description, created_at, superpixel_size, "
    "superpixel_algorithm, strategy, static_fraction, uncertainty, mc_samples, "
    "initial_images, images_per_round, model_architecture) VALUES ('old', '', '2026-01-01', "
    "32, 'slic', 'dynamic', 0.275, 'entropy', 20, 50, 50, 'efficientnet_lite1')"
)


def test_migration_adds_zoom_1_to_existing_projects_and_downgrade_drops_it(
    empty_database: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=empty_database, data_dir=tmp_path)
    upgrade_database(settings, "0014")
    engine = create_engine(empty_database)
    try:
        with engine.begin() as connection:
            connection.execute(text(_OLD_PROJECT))
        upgrade_database(settings)
        with engine.begin() as connection:
            row = connection.execute(
                text("SELECT id, model_architecture, encoder_zoom FROM projects")
            ).one()
            assert tuple(row)[1:] == ("efficientnet_lite1", 1)
            connection.execute(text("UPDATE projects SET encoder_zoom = 2"))
        with engine.connect() as connection, pytest.raises(IntegrityError):
            connection.execute(text("UPDATE projects SET encoder_zoom = 3"))

        downgrade_database(settings, "0014")
        columns = {c["name"] for c in inspect(engine).get_columns("projects")}
        assert "encoder_zoom" not in columns
        with engine.connect() as connection:
            kept = connection.execute(text("SELECT id, model_architecture FROM projects")).one()
        assert tuple(kept) == (row[0], "efficientnet_lite1")

        upgrade_database(settings)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT encoder_zoom FROM projects")).scalar() == 1
    finally:
        engine.dispose()
