"""Pre-fill from the model (issue 15): the task carries the predicted class of each asked
superpixel, a save records whether the annotator started from it, and the dashboard's figure
compares the effort per image with and without it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from backend.dashboard.prefill import prefill_effort
from core.models import Query
from tests.backend.builders import Account, World

WIDTH, HEIGHT, CELL = 32, 24, 8  # 4 x 3 = 12 superpixels of 64 px


def _labeling_task(
    world: World, session_factory: sessionmaker[Session], predicted: list[int] | None
) -> tuple[int, int, int, list[Account], int]:
    lead = world.user("lead@example.org")
    annotators = [world.user(f"ann{i}@example.org") for i in range(2)]
    project = world.project(lead, annotators=tuple(annotators))
    image = world.image(project, width=WIDTH, height=HEIGHT)
    superpixel_map = world.superpixel_grid(image, cell=CELL)
    round_ = world.round(project)
    query = world.query(round_, image, [0, 5, 7])
    with session_factory() as session:
        session.execute(update(Query).where(Query.id == query).values(predicted_classes=predicted))
        session.commit()
    return project, image, superpixel_map, annotators, round_


def test_next_task_returns_the_predicted_class_of_each_asked_superpixel(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    project, image, _map, annotators, _round = _labeling_task(world, session_factory, [2, 0, 1])
    task = client.post(f"/api/v1/projects/{project}/tasks/next", headers=annotators[0].headers)
    assert task.status_code == 200, task.text
    body = task.json()
    assert body["image_id"] == image
    assert body["superpixel_ids"] == [0, 5, 7]
    assert body["predicted_classes"] == [2, 0, 1]


def test_a_round_without_a_model_offers_no_prefill(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    project, _image, _map, annotators, _round = _labeling_task(world, session_factory, None)
    task = client.post(f"/api/v1/projects/{project}/tasks/next", headers=annotators[0].headers)
    assert task.json()["predicted_classes"] is None


def _submit(
    client: TestClient,
    project: int,
    image: int,
    superpixel_map: int,
    account: Account,
    *,
    prefilled: bool,
    clicks: int,
    seconds: float,
) -> None:
    response = client.patch(
        f"/api/v1/projects/{project}/images/{image}/mask",
        json={
            "superpixel_map_id": superpixel_map,
            "fills": [[0, 2], [5, 0], [7, 1]],
            "clicks": clicks,
            "seconds": seconds,
            "prefilled": prefilled,
            "done": True,
        },
        headers={**account.headers, "If-Match": '"0"'},
    )
    assert response.status_code == 200, response.text


def test_submission_records_prefill_and_the_dashboard_compares_effort(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    project, image, superpixel_map, annotators, round_ = _labeling_task(
        world, session_factory, [2, 0, 1]
    )
    _submit(
        client, project, image, superpixel_map, annotators[0], prefilled=True, clicks=2, seconds=6
    )
    history = client.get(
        f"/api/v1/projects/{project}/images/{image}/submissions", headers=annotators[0].headers
    ).json()
    assert [(s["prefilled"], s["clicks"], s["seconds"]) for s in history] == [(True, 2, 6.0)]

    # Two more images labeled by hand (one click per superpixel, slower).
    for index, (clicks, seconds) in enumerate([(3, 20.0), (5, 30.0)]):
        other = world.image(project, width=WIDTH, height=HEIGHT)
        other_map = world.superpixel_grid(other, cell=CELL)
        world.query(round_, other, [0, 5, 7])
        account = annotators[index % 2]
        _submit(
            client,
            project,
            other,
            other_map,
            account,
            prefilled=False,
            clicks=clicks,
            seconds=seconds,
        )
    with session_factory() as session:
        effort = prefill_effort(session, project)
    assert (effort.with_prefill.images, effort.without_prefill.images) == (1, 2)
    assert effort.with_prefill.median_seconds == 6.0
    assert effort.without_prefill.median_seconds == 25.0
    assert effort.without_prefill.median_clicks == 4.0
    assert effort.seconds_saved_share == pytest.approx(1 - 6 / 25)
    assert effort.clicks_saved_share == pytest.approx(0.5)
    # The lead's dashboard shows the same figure.
    admin = world.user("admin@example.org", admin=True)
    board = client.get(f"/api/v1/projects/{project}/dashboard", headers=admin.headers)
    assert board.status_code == 200, board.text
    assert board.json()["prefill"] == effort.model_dump()


def test_prefilled_must_be_a_boolean(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    project, image, superpixel_map, annotators, _round = _labeling_task(
        world, session_factory, [2, 0, 1]
    )
    response = client.patch(
        f"/api/v1/projects/{project}/images/{image}/mask",
        json={"superpixel_map_id": superpixel_map, "prefilled": "maybe"},
        headers={**annotators[0].headers, "If-Match": '"0"'},
    )
    assert response.status_code == 422
    assert "prefilled" in response.text
