"""A round that fails shows its error; once the cause is fixed the lead retries it and it
resumes after its last finished step. (Its first round is answered by ``tessera oracle``.)"""

from __future__ import annotations

from typing import Any

from tests.worker.conftest import Api, Stack
from tests.worker.flows import first_round_answered_by_oracle, wait_for_ingest, wait_for_job
from tests.worker.scenes import create_scene_project


def test_failed_round_shows_its_error_and_the_lead_retries_it(
    make_stack: Any, make_api: Any, tmp_path: Any
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project = create_scene_project(api)
    base = f"/projects/{project.id}"
    # A deployment mistake: the initial weights file does not exist.
    broken = stack.start_worker(TESSERA_MODEL_INITIAL_WEIGHTS=str(tmp_path / "missing.pt"))
    wait_for_ingest(api, stack, project.id)
    first_round_answered_by_oracle(api, stack, project, command_line=True)

    started = api.post(f"{base}/rounds")
    job_id = started["job"]["id"]
    failed, _ = wait_for_job(api, stack, project.id, job_id, succeed=False)
    assert failed["status"] == "failed"
    assert "missing.pt" in failed["error"]
    assert api.get(f"{base}/rounds/{started['round']['id']}")["status"] == "failed"
    broken.stop()  # the cause is fixed: the next worker is configured right
    retried = api.post(f"{base}/jobs/{job_id}/retry", expect=202)
    assert (retried["status"], retried["error"]) == ("queued", None)
    api.post(f"{base}/jobs/{job_id}/retry", expect=409)  # only a failed job can be retried
    stack.start_worker()
    job, _ = wait_for_job(api, stack, project.id, job_id)
    assert job["error"] is None
    detail = api.get(f"{base}/rounds/{started['round']['id']}")
    assert detail["status"] == "labeling" and detail["queries"]
