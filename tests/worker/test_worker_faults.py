"""A few of bench/worker_faults.py's faults in CI: SIGKILLs of the pool process holding the
round's job and of workers' main processes during a round. The round completes, every job
succeeds, no stored label changes, and no process outlives its worker."""

from __future__ import annotations

import functools
import os
import signal
import time
from datetime import datetime
from typing import Any

from sqlalchemy import select

from core.models import Job, JobStatus, Round
from core.models.base import utc_now
from tests.worker.conftest import Api, Stack, WorkerProcess, wait_for
from tests.worker.flows import first_round_answered_by_oracle, wait_for_ingest, wait_for_job
from tests.worker.processes import (
    Proc,
    holder_pid,
    identify,
    is_alive,
    living_children,
    still_running,
)
from tests.worker.scenes import annotation_fingerprints, create_scene_project

FAULTY = {
    "TESSERA_FINETUNE_ITERATIONS": "200",  # training lasts long enough to be hit
    "TESSERA_JOB_MAX_ATTEMPTS": "10",  # three losses of one job must not fail it here
}


def held_jobs(api: Api, round_id: int) -> list[tuple[int, datetime | None]]:
    """(pid, heartbeat_at) of the round's running jobs that a process holds."""
    with api.world.factory() as session:
        jobs = session.scalars(
            select(Job).where(Job.round_id == round_id, Job.status == JobStatus.running)
        )
        return [
            (pid, job.heartbeat_at) for job in jobs if (pid := holder_pid(job.worker)) is not None
        ]


def children(pid: int) -> set[Proc]:
    return {proc for child in living_children(pid) if (proc := identify(child)) is not None}


def round_status(api: Api, round_id: int) -> str:
    with api.world.factory() as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        return round_.status.value


def recovered(api: Api, round_id: int, killed: set[int], since: datetime) -> bool:
    """A process that was not killed renewed a lease of the round after ``since``, or the
    round is done."""
    renewed = any(
        pid not in killed and is_alive(pid) and beat is not None and beat > since
        for pid, beat in held_jobs(api, round_id)
    )
    return renewed or round_status(api, round_id) == "labeling"


def test_round_survives_kills_of_pool_and_main_processes(make_stack: Any, make_api: Any) -> None:
    stack: Stack = make_stack("postgresql", "redis")
    api: Api = make_api(stack)
    project = create_scene_project(api)
    base = f"/projects/{project.id}"
    for _ in range(2):
        stack.start_worker(**FAULTY)
    wait_for_ingest(api, stack, project.id)
    first_round_answered_by_oracle(api, stack, project)
    labels_before = annotation_fingerprints(api.world.factory)
    started = api.post(f"{base}/rounds")
    round_id = started["round"]["id"]
    seen: set[Proc] = set()
    orphans: list[Proc] = []
    recoveries: list[float] = []

    for kill in ("pool", "main", "main"):
        live = [w for w in stack.workers if w.process.poll() is None]
        for worker in live:
            seen.update(children(worker.process.pid))
        holders = wait_for(
            lambda: (
                [p for p, _ in held_jobs(api, round_id) if is_alive(p)]
                or api.get(f"{base}/rounds/{round_id}")["status"] == "labeling"
            ),
            60,
            "a process holding the round's job",
            stack.workers,
        )
        if holders is True:
            break  # the round is done before the last kill
        pid = holders[0]
        owner: WorkerProcess = next(w for w in live if pid in living_children(w.process.pid))
        killed_at, killed_clock = utc_now(), time.monotonic()
        if kill == "pool":
            os.kill(pid, signal.SIGKILL)
            killed = {pid}
        else:
            pool = children(owner.process.pid)
            os.kill(owner.process.pid, signal.SIGKILL)
            owner.process.wait(timeout=10)
            deadline = time.monotonic() + 5
            while any(map(still_running, pool)) and time.monotonic() < deadline:
                time.sleep(0.05)
            orphans += [p for p in pool if still_running(p)]
            killed = {owner.process.pid, *(proc[0] for proc in pool)}
            stack.start_worker(**FAULTY)  # as a supervisor would
        wait_for(
            functools.partial(recovered, api, round_id, killed, killed_at),
            60,
            f"the round to recover from the {kill} kill",
            stack.workers,
        )
        recoveries.append(time.monotonic() - killed_clock)

    wait_for_job(api, stack, project.id, started["job"]["id"], timeout=120)
    assert api.get(f"{base}/rounds/{round_id}")["status"] == "labeling"
    assert len(recoveries) >= 2  # at least the pool kill and one main kill hit the round
    assert annotation_fingerprints(api.world.factory) == labels_before
    assert [j for j in api.get(f"{base}/jobs") if j["status"] != "succeeded"] == []
    assert orphans == []
    for worker in stack.workers:
        seen.update(children(worker.process.pid))
        worker.stop()
    deadline = time.monotonic() + 10  # pool processes exit shortly after their parent
    while any(map(still_running, seen)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in seen if still_running(p)] == []
    print(f"\n{len(recoveries)} kills, recovered in " + ", ".join(f"{s:.1f}" for s in recoveries))
