"""The whole loop with a real worker process: upload -> superpixels -> random first round ->
oracle answers -> round 2 trains, scores and asks dynamic questions."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.worker.conftest import Api, Stack
from tests.worker.flows import wait_for_ingest, wait_for_job
from tests.worker.scenes import create_scene_project


@pytest.mark.parametrize(("database", "broker"), [("postgresql", "redis"), ("sqlite", "embedded")])
def test_upload_to_second_round_with_oracle_answers(
    make_stack: Any, make_api: Any, database: str, broker: str
) -> None:
    stack: Stack = make_stack(database, broker)
    api: Api = make_api(stack)
    project = create_scene_project(api)
    base = f"/projects/{project.id}"
    assert {i["status"] for i in api.get(f"{base}/images")} == {"processing"}

    stack.start_worker()
    wait_for_ingest(api, stack, project.id)
    ingest = [j for j in api.get(f"{base}/jobs") if j["kind"] == "ingest"]
    assert ingest and {j["status"] for j in ingest} == {"succeeded"}

    # Round 1: nothing is labeled, so initial_images pool images are asked for in full.
    started = api.post(f"{base}/rounds")
    first = started["round"]
    wait_for_job(api, stack, project.id, started["job"]["id"])
    detail = api.get(f"{base}/rounds/{first['id']}")
    assert detail["status"] == "labeling"
    assert len(detail["queries"]) == 4
    assert {q["image_id"] for q in detail["queries"]} <= set(project.pool)
    for query in detail["queries"]:
        count = int(
            api.client.get(
                f"/api/v1{base}/images/{query['image_id']}/superpixels", headers=api.headers
            ).headers["X-Superpixel-Count"]
        )
        assert query["superpixel_ids"] == list(range(count))

    oracle = api.post(f"{base}/rounds/{first['id']}/oracle", json={"mode": "exact"})
    oracle_job, _ = wait_for_job(api, stack, project.id, oracle["id"])
    assert oracle_job["message"].startswith("oracle answered 4 queries")
    for query in detail["queries"]:
        [submission] = api.get(f"{base}/images/{query['image_id']}/submissions")
        assert submission["round_id"] == first["id"] and submission["changed_pixels"] > 0
    api.post(f"{base}/rounds/{first['id']}/close", expect=200)
    asked_in_full = {q["image_id"] for q in detail["queries"]}

    # Round 2: train on the oracle's labels, score the pool, dynamic queries.
    clock = time.perf_counter()
    second = api.post(f"{base}/rounds")
    job, progress_seen = wait_for_job(api, stack, project.id, second["job"]["id"])
    seconds = time.perf_counter() - clock
    detail = api.get(f"{base}/rounds/{second['round']['id']}")
    assert detail["status"] == "labeling"
    counts = [len(q["superpixel_ids"]) for q in detail["queries"]]
    assert len(counts) == 4 and len(set(counts)) > 1, counts
    assert not {q["image_id"] for q in detail["queries"]} & set(project.validation)
    # Round 1 asked for every superpixel of its images; their void ground-truth pixels stay
    # unlabeled, but nothing there may be asked (and paid for) again.
    assert not {q["image_id"] for q in detail["queries"]} & asked_in_full
    assert any(0 < p < 1 and eta is not None for p, eta in progress_seen), progress_seen
    assert job["progress"] == 1.0 and job["finished_at"] is not None
    assert job["takeovers"] == 0 and job["worker"] is None
    [model] = api.get(f"{base}/models")
    assert model["round_id"] == second["round"]["id"]
    assert 0.0 <= model["metrics"]["miou"] <= 1.0
    assert len(model["metrics"]["per_class_iou"]) == 4
    assert model["metrics"]["validation_images"] == 4
    chunks = [j for j in api.get(f"{base}/jobs") if j["kind"] == "score"]
    assert len(chunks) >= 2 and {j["status"] for j in chunks} == {"succeeded"}
    uncertainty = api.client.get(
        f"/api/v1{base}/queries/{detail['queries'][0]['id']}/uncertainty", headers=api.headers
    )
    assert uncertainty.status_code == 200
    # Scoring stored the model's class per superpixel: each asked one comes with it (pre-fill).
    task = api.post(f"{base}/tasks/next", expect=200)
    assert task["round_id"] == second["round"]["id"]
    assert len(task["predicted_classes"]) == len(task["superpixel_ids"])
    assert set(task["predicted_classes"]) <= set(range(4))
    print(f"\n{database}/{broker}: round 2 took {seconds:.1f} s end to end; {job['message']}")
