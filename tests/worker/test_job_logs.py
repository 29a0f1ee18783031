"""A job's log lines carry its job id (set by ``run_job``), and only while it runs."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from core.logs import JsonFormatter
from tests.worker.conftest import Api, Stack
from tests.worker.flows import wait_for_ingest
from tests.worker.scenes import create_scene_project
from worker.jobs import JobLease
from worker.runtime import runtime_for
from worker.tasks.common import run_job


def test_a_jobs_log_lines_carry_its_job_id(
    make_stack: Any, make_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project = api.post("/projects", expect=201, json={"name": "logs"})["id"]
    runtime = runtime_for(stack.settings)
    step_log = logging.getLogger("worker.tasks.test_step")

    def fine(lease: JobLease) -> None:
        step_log.info("working on job")

    def broken(lease: JobLease) -> None:
        step_log.info("about to fail")
        raise RuntimeError("no such scene")

    caplog.set_level(logging.INFO)
    first, second = api.world.job(project, kind="ingest"), api.world.job(project, kind="ingest")
    run_job(runtime, first, fine)
    run_job(runtime, second, broken)
    step_log.info("between jobs")
    runtime.engine.dispose()

    by_message = {r.getMessage(): r for r in caplog.records}
    assert by_message["working on job"].job_id == first  # type: ignore[attr-defined]
    assert by_message["about to fail"].job_id == second  # type: ignore[attr-defined]
    failure = by_message[f"job {second} failed"]  # the runner's own line, with the traceback
    line = json.loads(JsonFormatter().format(failure))
    assert line["job_id"] == second and line["level"] == "ERROR"
    assert "no such scene" in line["exception"]
    assert by_message["between jobs"].job_id is None  # type: ignore[attr-defined]
    assert api.get(f"/projects/{project}/jobs/{second}")["status"] == "failed"


def test_a_worker_process_writes_json_lines_with_the_job_id(make_stack: Any, make_api: Any) -> None:
    stack: Stack = make_stack("postgresql", "embedded")
    api: Api = make_api(stack)
    project = create_scene_project(api, pool=2, validation=1)
    worker = stack.start_worker()
    wait_for_ingest(api, stack, project.id)
    jobs = api.get(f"/projects/{project.id}/jobs")
    ingest = {job["id"] for job in jobs if job["kind"] == "ingest"}
    assert ingest and all(job["status"] == "succeeded" for job in jobs if job["id"] in ingest)

    lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    assert any(" ready." in line["message"] for line in lines)  # Celery's own, as JSON too
    runs = [(re.match(r"job (\d+) (started|ran)", line["message"]), line) for line in lines]
    by_job = [(int(m.group(1)), line["job_id"]) for m, line in runs if m is not None]
    assert {job for job, _ in by_job} == ingest  # each ingest job started and ran here
    assert all(named == carried for named, carried in by_job)
    # Lines outside a job (startup, Celery's task receipt) carry no job id.
    assert any("job_id" not in line for line in lines)
