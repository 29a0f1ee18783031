"""Killing ``tessera worker``'s main process (SIGKILL) takes its prefork pool processes
with it, idle or in the middle of a job, so none is left holding a model (or GPU memory).

Celery's prefork pool asks for a parent-death signal itself (Linux, errors ignored); the
worker here runs with that call switched off, so the test checks Tessera's own
(``worker/parent_death.py``) and keeps holding whatever Celery version is installed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.worker.conftest import Api, Stack, wait_for
from tests.worker.flows import first_round_answered_by_oracle, wait_for_ingest
from tests.worker.processes import is_alive, living_children
from tests.worker.scenes import create_scene_project

WITHOUT_CELERY_PDEATHSIG = """
import celery.platforms

celery.platforms.set_pdeathsig = lambda name: None
"""


def spawned_children(pid: int) -> list[int]:
    """Children started by multiprocessing's spawn (the worker's start-up encoder check)."""
    found = []
    for child in living_children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in command:
            found.append(child)
    return found


@pytest.mark.parametrize("moment", ["starting", "idle", "training"])
def test_pool_processes_die_with_a_killed_worker(
    make_stack: Any, make_api: Any, tmp_path: Path, moment: str
) -> None:
    stack: Stack = make_stack("postgresql", "redis")
    api: Api = make_api(stack)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WITHOUT_CELERY_PDEATHSIG)
    worker = stack.start_worker(
        TESSERA_TRAIN_ITERATIONS="100000",
        PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    )
    main = worker.process.pid
    if moment == "starting":  # killed while its spawned start-up check loads weights
        wait_for(lambda: spawned_children(main), 60, "the start-up check", stack.workers)
    else:
        wait_for(lambda: " ready." in worker.log(), 60, "the worker to start", stack.workers)
    if moment == "training":
        project = create_scene_project(api)
        wait_for_ingest(api, stack, project.id)
        first_round_answered_by_oracle(api, stack, project)
        job_id = api.post(f"/projects/{project.id}/rounds")["job"]["id"]
        wait_for(
            lambda: (
                "training: iteration" in api.get(f"/projects/{project.id}/jobs/{job_id}")["message"]
            ),
            60,
            "training to start",
            stack.workers,
        )
    pool = living_children(main)
    os.kill(main, signal.SIGKILL)
    worker.process.wait(timeout=10)
    deadline = time.monotonic() + 5
    while any(is_alive(pid) for pid in pool) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pool if is_alive(pid)]
    for pid in left:  # never leave them running for the next test
        os.kill(pid, signal.SIGKILL)
    assert pool and not left, f"child processes {left} of {pool} outlived the worker"
