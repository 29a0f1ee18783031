"""The watchdog on its own (no worker process): a lapsed lease is taken over and its job
sent again; the last allowed loss fails the job, visibly and retryably."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from core.models import Job, JobStatus, Round, RoundStatus
from core.models.base import utc_now
from tests.worker.conftest import Api, Stack
from worker.runtime import runtime_for
from worker.watchdog import resend_stale_queued_jobs, take_over_lapsed_jobs


def lapsed_round_job(api: Api, project: int, number: int, takeovers: int) -> tuple[int, int]:
    """A round whose job a vanished worker held until a moment ago."""
    round_id = api.world.round(project, number=number, status=RoundStatus.training)
    job_id = api.world.job(project, kind="round")
    with api.world.factory() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                round_id=round_id,
                status=JobStatus.running,
                worker="gone/123/abc",
                lease_expires_at=utc_now() - timedelta(seconds=1),
                takeovers=takeovers,
            )
        )
        session.commit()
    return round_id, job_id


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_lapsed_job_is_resent_then_failed_at_the_attempt_limit(
    make_stack: Any, make_api: Any, database: str
) -> None:
    stack: Stack = make_stack(database, "embedded")
    api: Api = make_api(stack)
    project = api.post("/projects", expect=201, json={"name": "watchdog"})["id"]
    runtime = runtime_for(stack.settings)
    messages = stack.settings.broker_dir / "messages"

    round_id, job_id = lapsed_round_job(api, project, 1, takeovers=0)
    assert take_over_lapsed_jobs(runtime) == [job_id]
    job = api.get(f"/projects/{project}/jobs/{job_id}")
    assert (job["status"], job["worker"], job["takeovers"]) == ("running", None, 1)
    assert "lost" in job["message"]
    assert len(list(messages.iterdir())) == 1  # sent again
    assert take_over_lapsed_jobs(runtime) == []  # its fresh lease has not lapsed

    limit = stack.settings.job_max_attempts
    round_id, job_id = lapsed_round_job(api, project, 2, takeovers=limit - 1)
    assert take_over_lapsed_jobs(runtime) == []
    job = api.get(f"/projects/{project}/jobs/{job_id}")
    assert job["status"] == "failed" and "was lost 3 times" in job["error"]
    assert api.get(f"/projects/{project}/rounds/{round_id}")["status"] == "failed"
    with api.world.factory() as session:  # the other round must not block the retry
        session.execute(update(Round).where(Round.id != round_id).values(status="complete"))
        session.commit()
    retried = api.post(f"/projects/{project}/jobs/{job_id}/retry")
    assert (retried["status"], retried["takeovers"]) == ("queued", 0)
    assert api.get(f"/projects/{project}/rounds/{round_id}")["status"] == "pending"
    runtime.engine.dispose()


def test_job_never_sent_is_sent_once_after_a_lease(make_stack: Any, make_api: Any) -> None:
    stack: Stack = make_stack("postgresql", "embedded")
    api: Api = make_api(stack)
    project = api.post("/projects", expect=201, json={"name": "unsent"})["id"]
    runtime = runtime_for(stack.settings)
    messages = stack.settings.broker_dir / "messages"
    job_id = api.world.job(project, kind="ingest")  # committed, never sent

    assert resend_stale_queued_jobs(runtime) == []  # its sender may still be sending it
    with api.world.factory() as session:
        lease = timedelta(seconds=stack.settings.job_lease_seconds)
        session.execute(update(Job).where(Job.id == job_id).values(created_at=utc_now() - lease))
        session.commit()
    assert resend_stale_queued_jobs(runtime) == [job_id]
    assert resend_stale_queued_jobs(runtime) == []  # sent just now: not again
    assert len(list(messages.iterdir())) == 1
    job = api.get(f"/projects/{project}/jobs/{job_id}")
    assert (job["status"], job["celery_task_id"] is not None) == ("queued", True)
    runtime.engine.dispose()
