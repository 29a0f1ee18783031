"""The per-project training lock: one holder at a time, a lapsed lease is taken over, and
the old holder can no longer renew (so it cannot store a model)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from core.models.base import utc_now
from tests.worker.conftest import Api, Stack
from worker import locks


class ManualClock:
    """A clock the test moves: a lease lapses without waiting for it."""

    def __init__(self) -> None:
        self.at = utc_now()

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_training_lock_is_exclusive_and_a_lapsed_lease_is_taken_over(
    make_stack: Any, make_api: Any, database: str
) -> None:
    stack: Stack = make_stack(database, "embedded")
    api: Api = make_api(stack)
    project = api.post("/projects", expect=201, json={"name": "locks"})["id"]
    job = api.world.job(project, kind="round")
    name = locks.TRAINING_LOCK
    clock = ManualClock()
    with api.world.factory() as session:
        assert locks.try_acquire(session, project, name, "worker-a", job, 30, now=clock)
        clock.advance(29)
        assert not locks.try_acquire(session, project, name, "worker-b", job, 30, now=clock)
        assert locks.try_acquire(session, project, name, "worker-a", job, 30, now=clock)
        clock.advance(29)  # renewed a moment ago: still worker-a's
        assert not locks.try_acquire(session, project, name, "worker-b", job, 30, now=clock)
        clock.advance(2)  # worker-a stops renewing: its lease lapses
        assert locks.try_acquire(session, project, name, "worker-b", job, 30, now=clock)
        assert not locks.renew(session, project, name, "worker-a", 30, now=clock)
        session.rollback()
        locks.release(session, project, name, "worker-a")  # not the holder: no effect
        held = locks.current_holder(session, project, name)
        assert held is not None and held.holder == "worker-b"
        locks.release(session, project, name, "worker-b")
        assert locks.try_acquire(session, project, name, "worker-c", job, lease_seconds=5)
