"""The worker's inputs are bounded (issue 13): big images are segmented on a downscaled copy
into a full-size map, within a stated memory budget, and a job past its time budget fails
with a clear error while the queue goes on."""

from __future__ import annotations

import io
import zlib
from typing import Any

import numpy as np
import pytest
from celery.exceptions import TimeLimitExceeded
from PIL import Image

from core.dispatch import INGEST_TASK
from tests.worker.conftest import Api, Stack
from tests.worker.flows import wait_for_ingest, wait_for_job
from worker.celery_app import HARD_LIMIT_GRACE_SECONDS, create_celery_app
from worker.engine.superpixels import upsample_labels, work_shape

# The memory budget stated in README (TESSERA_WORK_MAX_PIXELS): one pool process ingests a
# 49 Mpx image within this heap, imports (torch, skimage) included.
MEMORY_BUDGET_MB = 1500


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _smooth_rgb(height: int, width: int, phase: float = 0.0) -> np.ndarray:
    """Colour waves and a checkerboard: compresses to a small PNG, and SLIC finds edges."""
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    red = (127 + 120 * np.sin(cols / 97.0 + phase)).astype(np.uint8)
    green = (127 + 120 * np.sin(rows / 61.0)).astype(np.uint8)
    board = (((rows // 300 + cols // 300) % 2) * 200).astype(np.uint8)
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = red, green, board
    return pixels


def _project(api: Api, size: int = 32) -> int:
    # The U-Net caches no encoder features at ingest: these tests measure the superpixels.
    project = api.post(
        "/projects",
        expect=201,
        json={"name": "big images", "superpixel_size": size, "model_architecture": "unet"},
    )
    return int(project["id"])


def _upload(api: Api, project: int, *files: tuple[str, bytes]) -> list[int]:
    body = api.post(
        f"/projects/{project}/images",
        expect=201,
        files=[("files", (name, data, "image/png")) for name, data in files],
    )
    return [int(image["id"]) for image in body["created"]]


def _superpixels(api: Api, project: int, image: int) -> np.ndarray:
    response = api.client.get(
        f"/api/v1/projects/{project}/images/{image}/superpixels", headers=api.headers
    )
    assert response.status_code == 200, response.text
    width = int(response.headers["X-Superpixel-Width"])
    height = int(response.headers["X-Superpixel-Height"])
    dtype = {"uint16": "<u2", "int32": "<i4"}[response.headers["X-Superpixel-Dtype"]]
    labels = np.frombuffer(zlib.decompress(response.content), dtype=dtype)
    assert int(response.headers["X-Superpixel-Count"]) == int(labels.max()) + 1
    return labels.reshape(height, width)


def _ingest_job(api: Api, project: int) -> dict[str, Any]:
    """The project's newest ingest job."""
    jobs = [job for job in api.get(f"/projects/{project}/jobs") if job["kind"] == "ingest"]
    return max(jobs, key=lambda job: int(job["id"]))


def _is_enlarged_from(labels: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether ``labels`` is a nearest-neighbour enlargement of a map of ``shape``."""
    height, width = labels.shape
    rows = (2 * np.arange(shape[0]) + 1) * height // (2 * shape[0])
    cols = (2 * np.arange(shape[1]) + 1) * width // (2 * shape[1])
    small = labels[rows][:, cols]
    return bool(np.array_equal(upsample_labels(small, height, width), labels))


def test_big_image_gets_a_full_size_map_computed_from_a_downscaled_copy(
    make_stack: Any, make_api: Any
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project = _project(api, size=8)
    [big, small] = _upload(
        api,
        project,
        ("big.png", _png(_smooth_rgb(200, 300))),
        ("small.png", _png(_smooth_rgb(60, 80, phase=1.0))),
    )
    stack.start_worker(TESSERA_WORK_MAX_PIXELS="10000")
    wait_for_ingest(api, stack, project)

    labels = _superpixels(api, project, big)
    assert labels.shape == (200, 300)
    shape = work_shape(200, 300, 10_000)
    assert shape == (81, 122)
    assert _is_enlarged_from(labels, shape)
    assert not _is_enlarged_from(labels, (shape[0] - 1, shape[1] - 1))
    # The count is what the full image gets at this size (60,000 / 8**2 ~ 940), not what
    # a 10,000 px image would get (~156).
    assert 600 < int(labels.max()) + 1 < 1300
    # An image under the limit is segmented at full resolution.
    full = _superpixels(api, project, small)
    assert full.shape == (60, 80)
    assert not _is_enlarged_from(full, work_shape(60, 80, 1200))


@pytest.mark.slow
def test_7000x7000_and_two_25_mpx_images_are_ingested_within_the_memory_budget(
    make_stack: Any, make_api: Any
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project = _project(api)
    huge = _png(_smooth_rgb(7000, 7000))
    assert len(huge) < 1_000_000  # the attack: a small file of 49 Mpx
    [first] = _upload(api, project, ("huge.png", huge))
    worker = stack.start_worker(TESSERA_WORKER_MEMORY_LIMIT_MB=str(MEMORY_BUDGET_MB))
    wait_for_job(api, stack, project, _ingest_job(api, project)["id"], timeout=240)
    assert _superpixels(api, project, first).shape == (7000, 7000)

    pair = _upload(
        api,
        project,
        ("a.png", _png(_smooth_rgb(5000, 5000))),
        ("b.png", _png(_smooth_rgb(5000, 5000, phase=2.0))),
    )
    wait_for_job(api, stack, project, _ingest_job(api, project)["id"], timeout=240)
    for image in pair:
        assert _superpixels(api, project, image).shape == (5000, 5000)
    worker.stop()

    # The same image segmented at full resolution needs more than the budget: the job
    # fails with the reason instead of taking the machine's memory.
    other = _project(api)
    _upload(api, other, ("huge.png", huge))
    stack.start_worker(
        TESSERA_WORKER_MEMORY_LIMIT_MB=str(MEMORY_BUDGET_MB), TESSERA_WORK_MAX_PIXELS="60000000"
    )
    job, _ = wait_for_job(
        api, stack, other, _ingest_job(api, other)["id"], timeout=240, succeed=False
    )
    assert job["status"] == "failed"
    assert "JobBudgetExceeded" in job["error"]
    assert f"memory budget of {MEMORY_BUDGET_MB} MB" in job["error"]
    assert "TESSERA_WORKER_MEMORY_LIMIT_MB" in job["error"]


def test_job_over_its_time_budget_fails_with_a_clear_error_and_the_queue_goes_on(
    make_stack: Any, make_api: Any
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project = _project(api, size=8)
    # Six ~2 Mpx images at full resolution and 8 px superpixels in one ingest job: SLIC takes
    # about a second each here, so the job runs far past its budget even on a faster machine.
    slow_images = [
        (f"slow{i}.png", _png(_smooth_rgb(1200, 1600, phase=float(i)))) for i in range(6)
    ]
    _upload(api, project, *slow_images)
    stack.start_worker(TESSERA_INGEST_TIME_LIMIT_SECONDS="1.5")
    slow_job = _ingest_job(api, project)
    job, _ = wait_for_job(api, stack, project, slow_job["id"], timeout=120, succeed=False)
    assert job["status"] == "failed"
    first_line = job["error"].splitlines()[0]
    assert first_line == (
        f"JobBudgetExceeded: ingest job {slow_job['id']} ran past its time budget of 1.5 s "
        "(TESSERA_INGEST_TIME_LIMIT_SECONDS) and was stopped"
    )
    # The worker is free for the next job.
    [quick] = _upload(api, project, ("quick.png", _png(_smooth_rgb(24, 32))))
    quick_job = _ingest_job(api, project)
    assert quick_job["id"] != slow_job["id"]
    wait_for_job(api, stack, project, quick_job["id"], timeout=60)
    assert _superpixels(api, project, quick).shape == (24, 32)


def test_a_job_killed_at_the_hard_limit_is_failed_with_the_budget_message(
    make_stack: Any, make_api: Any
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project = _project(api)
    _upload(api, project, ("a.png", _png(_smooth_rgb(24, 32))))
    job = _ingest_job(api, project)  # queued: no worker runs in this test
    app = create_celery_app(stack.settings.model_copy(update={"ingest_time_limit_seconds": 2}))
    task = app.tasks[INGEST_TASK]
    assert (task.soft_time_limit, task.time_limit) == (2, 2 + HARD_LIMIT_GRACE_SECONDS)
    # What Celery's main process calls after it killed a pool process at the hard limit
    # (celery.worker.request.Request.on_timeout).
    task.on_failure(TimeLimitExceeded(32.0), "celery-task-id", [job["id"]], {}, None)
    failed = api.get(f"/projects/{project}/jobs/{job['id']}")
    assert failed["status"] == "failed"
    assert failed["error"] == (
        f"JobBudgetExceeded: ingest job {job['id']} ran past its time budget of 2 s "
        "(TESSERA_INGEST_TIME_LIMIT_SECONDS) and was stopped (killed)"
    )


def test_worker_refuses_to_decode_an_image_over_its_pixel_cap(
    make_stack: Any, make_api: Any
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project = _project(api)
    # Accepted by the API's cap; the worker's cap is lower (a cap lowered after upload).
    [image] = _upload(api, project, ("wide.png", _png(_smooth_rgb(40, 60))))
    stack.start_worker(TESSERA_MAX_IMAGE_PIXELS="2000")
    job, _ = wait_for_job(
        api, stack, project, _ingest_job(api, project)["id"], timeout=60, succeed=False
    )
    assert job["error"].splitlines()[0] == (
        f"ValueError: image {image} (wide.png) is 60x40 = 2400 pixels, over "
        "TESSERA_MAX_IMAGE_PIXELS = 2000; the worker does not decode it (delete it or raise "
        "the limit)"
    )
    assert api.get(f"/projects/{project}/images/{image}")["status"] == "processing"
