"""A round whose job was committed but never sent (the API died between its commit and the
send) does not stay ``pending``: the watchdog sends it once it is a lease old, and the lead
can send it again by retrying the job."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from backend.rounds import service
from core.models import Job, Project
from core.models.base import utc_now
from tests.worker.conftest import TINY_WORKER, Api, Stack
from tests.worker.flows import wait_for_ingest, wait_for_job
from tests.worker.scenes import create_scene_project

LEASE = float(TINY_WORKER["TESSERA_JOB_LEASE_SECONDS"])


def round_committed_but_not_sent(api: Api, project_id: int) -> tuple[int, int]:
    """What ``POST .../rounds`` commits before it sends; returns (round id, job id)."""
    with api.world.factory() as session:
        project = session.get(Project, project_id)
        assert project is not None
        round_, job = service.create_round(session, project)
        session.commit()
        return round_.id, job.id


def backdate_job(api: Api, job_id: int, seconds: float) -> None:
    with api.world.factory() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(created_at=utc_now() - timedelta(seconds=seconds))
        )
        session.commit()


def test_round_never_sent_is_sent_by_the_watchdog_and_completes(
    make_stack: Any, make_api: Any
) -> None:
    stack: Stack = make_stack("postgresql", "redis")
    api: Api = make_api(stack)
    project = create_scene_project(api)
    stack.start_worker()
    wait_for_ingest(api, stack, project.id)

    round_id, job_id = round_committed_but_not_sent(api, project.id)
    committed_at = time.monotonic()
    job, _ = wait_for_job(api, stack, project.id, job_id, timeout=60)
    waited = time.monotonic() - committed_at
    assert job["celery_task_id"] is not None
    assert job["takeovers"] == 0
    round_ = api.get(f"/projects/{project.id}/rounds/{round_id}")
    assert round_["status"] == "labeling"
    assert len(round_["queries"]) == 4
    assert waited >= LEASE  # the API had its lease to send it first
    print(f"\nunsent round job sent by the watchdog and done {waited:.1f} s after its commit")


def test_lead_retry_sends_a_stale_pending_round_again(make_stack: Any, make_api: Any) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project = api.post("/projects", expect=201, json={"name": "empty"})["id"]
    round_id, job_id = round_committed_but_not_sent(api, project)
    messages = stack.settings.broker_dir / "messages"
    retry = f"/projects/{project}/jobs/{job_id}/retry"

    blocked = api.client.post(f"/api/v1/projects/{project}/rounds", headers=api.headers)
    assert blocked.status_code == 409
    assert f"retry its job {job_id}" in blocked.json()["detail"]  # the way out is named
    refused = api.client.post(f"/api/v1{retry}", headers=api.headers)
    assert refused.status_code == 409, refused.text
    assert "may still reach a worker" in refused.json()["detail"]
    assert not messages.exists() or not list(messages.iterdir())

    backdate_job(api, job_id, 2 * LEASE)
    job = api.post(retry)
    assert (job["status"], job["takeovers"]) == ("queued", 0)
    assert job["celery_task_id"] is not None
    assert job["message"] == "retry: sent again while queued"
    assert len(list(messages.iterdir())) == 1
    assert api.get(f"/projects/{project}/rounds/{round_id}")["status"] == "pending"

    stack.start_worker()
    wait_for_job(api, stack, project, job_id, timeout=60)
    # Nothing to label in an empty project: the round ends at once.
    assert api.get(f"/projects/{project}/rounds/{round_id}")["status"] == "complete"
