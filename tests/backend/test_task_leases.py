"""A task leased to one annotator: others cannot save or close it, and a release frees only
the lease it read (a conditional UPDATE), even when the task is claimed anew meanwhile."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, event, text, update
from sqlalchemy.orm import Session, sessionmaker

from core.models import Query, QueryStatus
from core.models.base import utc_now
from tests.backend.builders import Account, World, grid_labels, png_bytes

WIDTH, HEIGHT, CELL = 32, 24, 8
QUERIED = [0, 5]


@dataclass
class Leased:
    lead: Account
    holder: Account
    other: Account
    project: int
    image: int
    query: int

    @property
    def mask_url(self) -> str:
        return f"/api/v1/projects/{self.project}/images/{self.image}/mask"


@pytest.fixture
def leased(world: World, client: TestClient) -> Leased:
    lead = world.user("lead@example.org")
    holder, other = (world.user(f"ann{i}@example.org") for i in range(2))
    project = world.project(lead, annotators=(holder, other))
    image = world.image(project, width=WIDTH, height=HEIGHT)
    world.superpixel_grid(image, cell=CELL)
    query = world.query(world.round(project), image, QUERIED)
    task = client.post(f"/api/v1/projects/{project}/tasks/next", headers=holder.headers)
    assert task.json()["query_id"] == query
    return Leased(lead, holder, other, project, image, query)


def _painted(superpixel: int, class_index: int) -> NDArray[np.uint8]:
    mask = np.full((HEIGHT, WIDTH), 255, dtype=np.uint8)
    mask[grid_labels(WIDTH, HEIGHT, CELL) == superpixel] = class_index
    return mask


def _put(client: TestClient, leased: Leased, account: Account, version: int) -> Response:
    response: Response = client.put(
        leased.mask_url,
        content=png_bytes(_painted(0, 1)),
        params={"done": True},
        headers={**account.headers, "If-Match": f'"{version}"', "Content-Type": "image/png"},
    )
    return response


def _query(factory: sessionmaker[Session], query_id: int) -> Query:
    with factory() as session:
        query = session.get(Query, query_id)
        assert query is not None
        session.expunge(query)
        return query


def test_another_annotator_cannot_save_or_close_a_reserved_task(
    client: TestClient, leased: Leased, session_factory: sessionmaker[Session]
) -> None:
    refused = _put(client, leased, leased.other, 0)
    assert refused.status_code == 409, refused.text
    assert "reserved for another annotator" in refused.json()["detail"]
    edit = client.patch(
        leased.mask_url,
        json={"superpixel_map_id": 1, "fills": [[0, 1]], "runs": [], "done": True},
        headers={**leased.other.headers, "If-Match": '"0"'},
    )
    assert edit.status_code == 409, edit.text
    query = _query(session_factory, leased.query)
    assert (query.status, query.assignee_id) == (QueryStatus.assigned, leased.holder.id)
    assert client.get(leased.mask_url, headers=leased.lead.headers).headers["etag"] == '"0"'
    # The holder saves; so may a lead, whoever holds the task.
    assert _put(client, leased, leased.holder, 0).status_code == 200


def test_a_lead_may_save_a_reserved_task(client: TestClient, leased: Leased) -> None:
    assert _put(client, leased, leased.lead, 0).status_code == 200


def test_an_expired_reservation_does_not_block_others(
    client: TestClient, leased: Leased, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        session.execute(
            update(Query)
            .where(Query.id == leased.query)
            .values(lease_expires_at=utc_now() - timedelta(seconds=1))
        )
        session.commit()
    assert _put(client, leased, leased.other, 0).status_code == 200


def test_a_release_frees_only_the_lease_it_read(
    client: TestClient,
    leased: Leased,
    session_factory: sessionmaker[Session],
    app_engine: Engine,
) -> None:
    """The holder's lease runs out and another annotator claims the task while the holder's
    release is between its read and its write: the new lease must survive."""
    url = f"/api/v1/projects/{leased.project}/tasks/{leased.query}/release"
    answers: list[int] = []
    writing = threading.Event()

    def release_writes(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The release's UPDATE is sent only after its SELECT read the holder's lease.
        if statement.startswith("UPDATE queries"):
            writing.set()

    with app_engine.connect() as claim:
        claim.begin()
        # The new claim, written but not yet committed: it holds the row (or SQLite's lock).
        claim.execute(
            text(
                "UPDATE queries SET assignee_id = :other, lease_expires_at = :lease WHERE id = :id"
            ),
            {
                "other": leased.other.id,
                "lease": utc_now() + timedelta(minutes=10),
                "id": leased.query,
            },
        )
        release = threading.Thread(
            target=lambda: answers.append(
                client.post(url, headers=leased.holder.headers).status_code
            )
        )
        event.listen(app_engine, "before_cursor_execute", release_writes)
        try:
            release.start()
            assert writing.wait(timeout=60), "the release never got to its UPDATE"
        finally:
            event.remove(app_engine, "before_cursor_execute", release_writes)
        if app_engine.dialect.name == "postgresql":
            # Commit only once the release's UPDATE waits for the claim's row lock, so the
            # write takes the re-check path. (SQLite shows no such wait from outside; there
            # the UPDATE waits in its busy handler or starts just after the commit: either
            # way it writes after the claim and must find the lease changed.)
            _wait_for_lock_wait(claim, "UPDATE queries")
        claim.commit()
        release.join(timeout=60)
    assert answers == [409]
    query = _query(session_factory, leased.query)
    assert query.assignee_id == leased.other.id
    assert query.lease_expires_at is not None


def _wait_for_lock_wait(observer: Connection, statement_start: str) -> None:
    """Polls pg_stat_activity until another session's ``statement_start...`` in this database
    waits on a lock."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE :prefix"
    )
    deadline = time.monotonic() + 60
    while True:
        # Within a transaction pg_stat_activity is a snapshot taken at first access.
        observer.execute(text("SELECT pg_stat_clear_snapshot()"))
        if observer.scalar(waiting, {"prefix": statement_start + "%"}):
            return
        assert time.monotonic() < deadline, f"no {statement_start!r} waited on a lock in 60 s"
        time.sleep(0.01)


@pytest.fixture
def app_engine(session_factory: sessionmaker[Session]) -> Engine:
    engine = session_factory.kw["bind"]
    assert isinstance(engine, Engine)
    return engine
