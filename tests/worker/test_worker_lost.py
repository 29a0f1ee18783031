"""A worker killed with SIGKILL during training: another worker takes the job over once
its lease lapses, the round completes, and no stored label changes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.worker.conftest import TINY_WORKER, Api, Stack, wait_for
from tests.worker.flows import first_round_answered_by_oracle, wait_for_ingest, wait_for_job
from tests.worker.scenes import annotation_fingerprints, create_scene_project
from worker import locks


@pytest.mark.parametrize(("database", "broker"), [("postgresql", "redis"), ("sqlite", "embedded")])
def test_killed_worker_job_is_taken_over_and_labels_are_untouched(
    make_stack: Any, make_api: Any, database: str, broker: str
) -> None:
    stack: Stack = make_stack(database, broker)
    api: Api = make_api(stack)
    project = create_scene_project(api)
    base = f"/projects/{project.id}"
    # This worker's training would take minutes: it is killed long before that.
    doomed = stack.start_worker(TESSERA_TRAIN_ITERATIONS="100000")
    wait_for_ingest(api, stack, project.id)
    first_round_answered_by_oracle(api, stack, project)

    started = api.post(f"{base}/rounds")
    job_id = started["job"]["id"]
    wait_for(
        lambda: "training: iteration" in api.get(f"{base}/jobs/{job_id}")["message"],
        60,
        "training to start",
        stack.workers,
    )
    labels_before = annotation_fingerprints(api.world.factory)
    doomed.kill()
    killed_at = time.monotonic()
    job = api.get(f"{base}/jobs/{job_id}")
    assert (job["status"], job["takeovers"]) == ("running", 0)

    stack.start_worker()
    job, _ = wait_for_job(api, stack, project.id, job_id, timeout=90)
    recovered_in = time.monotonic() - killed_at
    assert job["takeovers"] == 1
    assert api.get(f"{base}/rounds/{started['round']['id']}")["status"] == "labeling"
    [model] = [m for m in api.get(f"{base}/models") if m["round_id"] == started["round"]["id"]]
    assert model["metrics"]["iterations"] == int(TINY_WORKER["TESSERA_TRAIN_ITERATIONS"])
    assert annotation_fingerprints(api.world.factory) == labels_before
    with api.world.factory() as session:
        lock = locks.current_holder(session, project.id, locks.TRAINING_LOCK)
        assert lock is not None and lock.holder is None
    lease = float(TINY_WORKER["TESSERA_JOB_LEASE_SECONDS"])
    print(f"\n{database}/{broker}: lease {lease} s, killed -> round done in {recovered_in:.1f} s")
