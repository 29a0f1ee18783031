"""A job whose PostgreSQL connection is lost mid-step (a restart, a failover) is not failed:
its lease lapses and the watchdog sends it again. An SQL error of the job itself still
fails it, with its text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text, update

from core.models import Job
from core.models.base import utc_now
from tests.worker.conftest import Api, Stack
from worker.jobs import JobLease
from worker.runtime import runtime_for
from worker.tasks.common import run_job
from worker.watchdog import take_over_lapsed_jobs


def test_lost_connection_leaves_the_job_to_the_watchdog(make_stack: Any, make_api: Any) -> None:
    stack: Stack = make_stack("postgresql", "embedded")
    api: Api = make_api(stack)
    project = api.post("/projects", expect=201, json={"name": "outage"})["id"]
    runtime = runtime_for(stack.settings)

    def connection_killed(lease: JobLease) -> None:
        with runtime.session_factory() as session:  # the server ends this very connection
            session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    def division_by_zero(lease: JobLease) -> None:
        with runtime.session_factory() as session:
            session.execute(text("SELECT 1 / 0"))

    lost = api.world.job(project, kind="ingest")
    run_job(runtime, lost, connection_killed)
    job = api.get(f"/projects/{project}/jobs/{lost}")
    assert (job["status"], job["error"]) == ("running", None)
    assert job["worker"] is not None  # still held: its lease lapses, nothing is written

    with api.world.factory() as session:
        session.execute(
            update(Job)
            .where(Job.id == lost)
            .values(lease_expires_at=utc_now() - timedelta(seconds=1))
        )
        session.commit()
    assert take_over_lapsed_jobs(runtime) == [lost]
    job = api.get(f"/projects/{project}/jobs/{lost}")
    assert (job["status"], job["worker"], job["takeovers"]) == ("running", None, 1)

    broken = api.world.job(project, kind="ingest")
    run_job(runtime, broken, division_by_zero)
    job = api.get(f"/projects/{project}/jobs/{broken}")
    assert job["status"] == "failed"
    assert "DivisionByZero" in job["error"]
    runtime.engine.dispose()
