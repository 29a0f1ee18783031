"""tasks/upcoming: what tasks/next would hand the caller after the task they hold, read
without a lease or a write (the browser downloads it ahead)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.models import Annotation, Query, QueryStatus
from core.models.base import utc_now
from tests.backend.builders import Account, World, png_bytes

WIDTH, HEIGHT, CELL = 32, 24, 8


@dataclass
class Queue:
    holder: Account
    other: Account
    project: int
    images: list[int]  # in the order tasks/next hands them out (image score, highest first)
    queries: list[int]

    def url(self, path: str) -> str:
        return f"/api/v1/projects/{self.project}/{path}"


@pytest.fixture
def queue(world: World) -> Queue:
    lead = world.user("lead@example.org")
    holder, other = (world.user(f"ann{i}@example.org") for i in range(2))
    project = world.project(lead, annotators=(holder, other))
    round_id = world.round(project)
    images, queries = [], []
    for score in (0.9, 0.7, 0.5):
        image = world.image(project, width=WIDTH, height=HEIGHT)
        world.superpixel_grid(image, cell=CELL)
        images.append(image)
        queries.append(world.query(round_id, image, [0, 5], image_score=score))
    return Queue(holder, other, project, images, queries)


def _next(client: TestClient, queue: Queue, account: Account, **params: Any) -> int:
    response = client.post(queue.url("tasks/next"), params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["query_id"])


def _upcoming(client: TestClient, queue: Queue, account: Account, **params: Any) -> list[Any]:
    response = client.get(queue.url("tasks/upcoming"), params=params, headers=account.headers)
    if response.status_code == 204:
        return []
    assert response.status_code == 200, response.text
    body: list[Any] = response.json()
    return body


def _submit(client: TestClient, queue: Queue, account: Account, image: int) -> None:
    mask = np.full((HEIGHT, WIDTH), 255, dtype=np.uint8)
    mask[:CELL, :CELL] = 1  # superpixel 0 of the grid
    response = client.put(
        queue.url(f"images/{image}/mask"),
        content=png_bytes(mask),
        params={"done": True},
        headers={**account.headers, "If-Match": '"0"', "Content-Type": "image/png"},
    )
    assert response.status_code == 200, response.text


def _task_rows(factory: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    """Every query's lease and every mask's version."""
    with factory() as session:
        leases = session.execute(
            select(Query.id, Query.status, Query.assignee_id, Query.lease_expires_at).order_by(
                Query.id
            )
        )
        masks = session.execute(
            select(Annotation.image_id, Annotation.version).order_by(Annotation.image_id)
        )
        return [tuple(row) for row in [*leases, *masks]]


def test_upcoming_names_the_task_next_then_hands_out(client: TestClient, queue: Queue) -> None:
    held = _next(client, queue, queue.holder)
    assert held == queue.queries[0]
    [upcoming] = _upcoming(client, queue, queue.holder)
    assert upcoming["query_id"] == queue.queries[1]
    assert upcoming["image_id"] == queue.images[1]
    assert (upcoming["width"], upcoming["height"], upcoming["mask_version"]) == (WIDTH, HEIGHT, 0)
    assert upcoming["superpixel_ids"] == [0, 5]
    links = upcoming["links"]
    map_id = upcoming["superpixel_map_id"]
    assert links["superpixels"].endswith(f"/images/{queue.images[1]}/superpixels?map_id={map_id}")
    # The links fetch what the task will need.
    for link in (links["image"], links["mask"], links["superpixels"]):
        assert client.get(link, headers=queue.holder.headers).status_code == 200, link

    _submit(client, queue, queue.holder, queue.images[0])
    claimed = client.post(queue.url("tasks/next"), headers=queue.holder.headers).json()
    assert claimed["query_id"] == upcoming["query_id"]
    assert claimed["superpixel_map_id"] == map_id
    assert claimed["links"] == links


def test_upcoming_passes_over_exclusions_and_lists_up_to_the_limit(
    client: TestClient, queue: Queue
) -> None:
    _next(client, queue, queue.holder)
    listed = _upcoming(client, queue, queue.holder, limit=3)
    assert [task["query_id"] for task in listed] == queue.queries[1:]
    skipped = _upcoming(client, queue, queue.holder, exclude=[queue.queries[1]])
    assert [task["query_id"] for task in skipped] == [queue.queries[2]]
    # tasks/next with the same exclusion agrees once the held task is done.
    _submit(client, queue, queue.holder, queue.images[0])
    assert _next(client, queue, queue.holder, exclude=[queue.queries[1]]) == queue.queries[2]


def test_upcoming_takes_no_lease_and_writes_nothing(
    client: TestClient, queue: Queue, session_factory: sessionmaker[Session]
) -> None:
    _next(client, queue, queue.holder)
    before = _task_rows(session_factory)
    upcoming, _ = _upcoming(client, queue, queue.holder, limit=3)
    assert _task_rows(session_factory) == before
    # Another annotator can still claim it; the holder is then told the one after.
    assert _next(client, queue, queue.other) == upcoming["query_id"]
    assert [task["query_id"] for task in _upcoming(client, queue, queue.holder)] == [
        queue.queries[2]
    ]


def test_upcoming_is_204_when_only_the_held_task_is_left(client: TestClient, queue: Queue) -> None:
    _next(client, queue, queue.holder)
    response = client.get(
        queue.url("tasks/upcoming"),
        params={"exclude": queue.queries[1:]},
        headers=queue.holder.headers,
    )
    assert response.status_code == 204, response.text
    assert response.content == b""


def test_upcoming_limit_out_of_range_is_422(client: TestClient, queue: Queue) -> None:
    for limit in (0, 4):
        response = client.get(
            queue.url("tasks/upcoming"), params={"limit": limit}, headers=queue.holder.headers
        )
        assert response.status_code == 422, response.text


def test_upcoming_ranks_an_expired_lease_of_the_caller_first_as_next_does(
    client: TestClient, queue: Queue, session_factory: sessionmaker[Session]
) -> None:
    """tasks/next hands a caller their own lapsed lease back before the pool's best."""
    _next(client, queue, queue.holder)  # holds queries[0]
    with session_factory() as session:
        session.execute(
            update(Query)
            .where(Query.id == queue.queries[2])
            .values(
                assignee_id=queue.holder.id,
                lease_expires_at=utc_now() - timedelta(seconds=1),
                status=QueryStatus.assigned,
            )
        )
        session.commit()
    [upcoming] = _upcoming(client, queue, queue.holder)
    assert upcoming["query_id"] == queue.queries[2]
    _submit(client, queue, queue.holder, queue.images[0])
    assert _next(client, queue, queue.holder) == queue.queries[2]
