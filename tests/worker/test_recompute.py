"""A settings change that makes superpixel maps or encoder features stale queues CPU ingest
jobs that recompute them; the next round waits for those and scores and asks on the new
maps only (real PostgreSQL, Redis and a worker process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from core.dispatch import send_job
from core.models import Image, ImageScore, ImageStatus, Job, JobStatus, Query, SuperpixelMap
from core.models.base import utc_now
from tests.worker.conftest import Api, Stack, wait_for
from tests.worker.flows import first_round_answered_by_oracle, wait_for_ingest, wait_for_job
from tests.worker.scenes import create_scene_project


def _patch(api: Api, project_id: int, **changes: Any) -> None:
    response = api.client.patch(f"/api/v1/projects/{project_id}", headers=api.headers, json=changes)
    assert response.status_code == 200, response.text


def _ingest_jobs(stack: Stack, api: Api, project_id: int) -> list[Job]:
    with api.world.factory() as session:
        return list(
            session.scalars(
                select(Job)
                .where(Job.project_id == project_id, Job.kind == "ingest")
                .order_by(Job.id)
            )
        )


def test_only_settings_that_stale_maps_or_features_queue_recompute_jobs(
    make_stack: Callable[[str, str], Stack], make_api: Callable[[Stack], Api]
) -> None:
    stack = make_stack("postgresql", "redis")  # no worker: the jobs stay queued
    api = make_api(stack)
    lead = api.world.user("lead-recompute@example.org")
    api.headers = lead.headers
    project_id = api.world.project(lead, superpixel_size=8, model_architecture="unet")
    ready = [api.world.image(project_id) for _ in range(10)]
    processing = api.world.image(project_id)  # its own ingest job will use the new size
    with api.world.factory() as session:
        for image_id in ready:
            image = session.get(Image, image_id)
            assert image is not None
            image.status = ImageStatus.ready
        session.commit()

    _patch(api, project_id, strategy="static", superpixel_size=8, model_architecture="unet")
    assert _ingest_jobs(stack, api, project_id) == []

    _patch(api, project_id, superpixel_size=16)
    jobs = _ingest_jobs(stack, api, project_id)
    # TESSERA_INGEST_CHUNK_IMAGES is 8 in these tests: 10 images, two jobs, sent.
    assert [len((job.payload or {})["image_ids"]) for job in jobs] == [8, 2]
    assert sorted(i for job in jobs for i in (job.payload or {})["image_ids"]) == ready
    assert processing not in (jobs[0].payload or {})["image_ids"]
    assert all(job.status == "queued" and job.celery_task_id for job in jobs)
    assert "recomputing superpixels" in jobs[0].message

    _patch(api, project_id, model_architecture="efficientnet_lite0")
    features = _ingest_jobs(stack, api, project_id)[2:]
    assert len(features) == 2 and "recomputing encoder features" in features[0].message

    # A larger EfficientNet-Lite has other features: another recompute.
    _patch(api, project_id, model_architecture="efficientnet_lite2")
    larger = _ingest_jobs(stack, api, project_id)[4:]
    assert len(larger) == 2 and "recomputing encoder features" in larger[0].message


def test_a_round_after_a_new_superpixel_size_scores_and_asks_on_the_new_maps(
    make_stack: Callable[[str, str], Stack], make_api: Callable[[Stack], Api]
) -> None:
    stack = make_stack("postgresql", "redis")
    api = make_api(stack)
    stack.start_worker()
    project = create_scene_project(api, pool=8, validation=2)
    wait_for_ingest(api, stack, project.id)
    first_round_answered_by_oracle(api, stack, project)
    images = project.pool + project.validation

    _patch(api, project.id, superpixel_size=16)
    # Started at once: the round waits for the recompute instead of computing maps itself.
    started = api.post(f"/projects/{project.id}/rounds")
    wait_for_job(api, stack, project.id, started["job"]["id"], timeout=240)
    round_id = int(started["round"]["id"])

    with api.world.factory() as session:
        maps = {
            (image_id, size): map_id
            for image_id, size, map_id in session.execute(
                select(SuperpixelMap.image_id, SuperpixelMap.size, SuperpixelMap.id)
            )
        }
        new_maps = {maps[(image_id, 16)] for image_id in images}  # KeyError: not recomputed
        assert all((image_id, 8) in maps for image_id in images)  # round 1's maps stay
        scores = list(session.scalars(select(ImageScore).where(ImageScore.round_id == round_id)))
        queries = list(session.scalars(select(Query).where(Query.round_id == round_id)))
        unfinished = session.scalars(
            select(Job.id).where(Job.kind == "ingest", Job.status != "succeeded")
        ).all()
    assert unfinished == []
    assert scores and {score.superpixel_map_id for score in scores} <= new_maps
    assert queries and {query.superpixel_map_id for query in queries} <= new_maps
    # Every pool image still open was scored: none skipped for a missing map.
    open_images = {
        image["id"]
        for image in api.get(f"/projects/{project.id}/images", params={"split": "pool"})
        if image["labeled_pixels"] < image["width"] * image["height"]
    }
    assert {score.image_id for score in scores} == open_images
    # The API serves the new map as the image's current one.
    response = api.client.get(
        f"/api/v1/projects/{project.id}/images/{project.pool[0]}/superpixels",
        headers=api.headers,
    )
    assert response.status_code == 200
    assert int(response.headers["X-Superpixel-Map-Id"]) == maps[(project.pool[0], 16)]


def test_a_round_waits_while_an_ingest_job_is_unfinished_and_runs_when_it_ends(
    make_stack: Callable[[str, str], Stack], make_api: Callable[[Stack], Api]
) -> None:
    stack = make_stack("postgresql", "redis")
    api = make_api(stack)
    worker = stack.start_worker()
    project = create_scene_project(api, pool=6, validation=1)
    wait_for_ingest(api, stack, project.id)
    with api.world.factory() as session:
        # Queued and marked sent, but not sent yet: the watchdog leaves it for 5 leases.
        ingest = Job(
            project_id=project.id,
            kind="ingest",
            status=JobStatus.queued,
            payload={"image_ids": project.pool},
            dispatched_at=utc_now(),
        )
        session.add(ingest)
        session.commit()
        ingest_id = ingest.id
    started = api.post(f"/projects/{project.id}/rounds")
    base = f"/projects/{project.id}"

    def waiting() -> Any:
        job = api.get(f"{base}/jobs/{started['job']['id']}")
        return "waiting for superpixels" in job["message"] and job

    job = wait_for(waiting, 60, "the round to wait for the ingest job", [worker])
    assert job["status"] == "running"
    assert api.get(f"{base}/rounds/{started['round']['id']}")["queries"] == []
    with api.world.factory() as session:
        row = session.get(Job, ingest_id)
        assert row is not None
        send_job(stack.settings, row)
        session.commit()
    # The ingest job ends and sends the round on: no lease has to lapse first.
    wait_for_job(api, stack, project.id, ingest_id)
    wait_for_job(api, stack, project.id, started["job"]["id"], timeout=60)
    assert api.get(f"{base}/rounds/{started['round']['id']}")["status"] == "labeling"
