"""Steps the worker tests share: wait for a job, run the random first round with the oracle."""

from __future__ import annotations

import subprocess
from typing import Any

from tests.worker.conftest import TESSERA, Api, Stack, wait_for
from tests.worker.scenes import SceneProject


def wait_for_job(
    api: Api, stack: Stack, project: int, job_id: int, timeout: float = 90, succeed: bool = True
) -> tuple[dict[str, Any], list[tuple[float, str | None]]]:
    """Polls the job until it ends; returns it and the (progress, eta_at) pairs seen while
    it ran."""
    seen: list[tuple[float, str | None]] = []

    def ended() -> Any:
        job = api.get(f"/projects/{project}/jobs/{job_id}")
        if job["status"] == "running":
            seen.append((job["progress"], job["eta_at"]))
        return job if job["status"] in ("succeeded", "failed") else None

    job = wait_for(ended, timeout, f"job {job_id}", stack.workers, interval=0.1)
    if succeed:
        assert job["status"] == "succeeded", job["error"]
    return job, seen


def wait_for_ingest(api: Api, stack: Stack, project: int) -> None:
    wait_for(
        lambda: not api.get(f"/projects/{project}/images", params={"status": "processing"}),
        60,
        "superpixels of every upload",
        stack.workers,
    )


def wait_for_ingest_jobs(api: Api, stack: Stack, project: int) -> None:
    """Every upload ingested and every ingest job ended: an image is ready before its
    encoder features are stored, so the jobs' end is the features' end."""
    wait_for_ingest(api, stack, project)
    for job in [j for j in api.get(f"/projects/{project}/jobs") if j["kind"] == "ingest"]:
        wait_for_job(api, stack, project, job["id"])


def first_round_answered_by_oracle(
    api: Api, stack: Stack, project: SceneProject, *, command_line: bool = False
) -> int:
    """Round 1 (random initial images) answered by the oracle, through the API's oracle job
    or the ``tessera oracle`` command, and closed; returns its id."""
    base = f"/projects/{project.id}"
    started = api.post(f"{base}/rounds")
    wait_for_job(api, stack, project.id, started["job"]["id"])
    round_id = int(started["round"]["id"])
    if command_line:
        done = subprocess.run(
            [str(TESSERA), "oracle", "--project", str(project.id), "--mode", "dominant"],
            env=stack.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "oracle answered 4 queries" in done.stdout, done.stdout
    else:
        oracle = api.post(f"{base}/rounds/{round_id}/oracle", json={"mode": "exact"})
        wait_for_job(api, stack, project.id, oracle["id"])
    api.post(f"{base}/rounds/{round_id}/close", expect=200)
    return round_id
