"""The per-project training lock: one holder at a time, a lapsed lease is taken over, and
the old holder can no longer renew (so it cannot store a model)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.worker.conftest import Api, Stack
from worker import locks


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_training_lock_is_exclusive_and_a_lapsed_lease_is_taken_over(
    make_stack: Any, make_api: Any, database: str
) -> None:
    stack: Stack = make_stack(database, "embedded")
    api: Api = make_api(stack)
    project = api.post("/projects", expect=201, json={"name": "locks"})["id"]
    job = api.world.job(project, kind="round")
    name = locks.TRAINING_LOCK
    with api.world.factory() as session:
        assert locks.try_acquire(session, project, name, "worker-a", job, lease_seconds=0.5)
        assert not locks.try_acquire(session, project, name, "worker-b", job, lease_seconds=5)
        assert locks.try_acquire(session, project, name, "worker-a", job, lease_seconds=0.5)
        time.sleep(0.6)  # worker-a stops renewing: its lease lapses
        assert locks.try_acquire(session, project, name, "worker-b", job, lease_seconds=5)
        assert not locks.renew(session, project, name, "worker-a", lease_seconds=5)
        session.rollback()
        locks.release(session, project, name, "worker-a")  # not the holder: no effect
        held = locks.current_holder(session, project, name)
        assert held is not None and held.holder == "worker-b"
        locks.release(session, project, name, "worker-b")
        assert locks.try_acquire(session, project, name, "worker-c", job, lease_seconds=5)
