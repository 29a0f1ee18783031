"""A project's encoder zoom in the worker: a zoom-2 project caches the zoomed encoder's maps
at ingest and trains round 2 from them (a real worker process), and a checkpoint trained at
another zoom is never the one a round fine-tunes."""

from __future__ import annotations

from typing import Any

from core.models import ModelCheckpoint, Project
from tests.worker.conftest import Api, Stack
from tests.worker.flows import wait_for_ingest_jobs
from tests.worker.scenes import create_scene_project
from tests.worker.test_pretrained_model import (
    _answer_and_close,
    _feature_rows,
    _labeling_round,
    _round_model,
)
from worker.checkpoints import config_metrics, latest_checkpoint, model_config

# EfficientNet-Lite0's maps at strides 4..32 of the 2x image (its finest map dropped): the
# first sits at stride 2 of the 48x64 scene, like the plain encoder's first.
ZOOMED_LITE0_CHANNELS = [24, 40, 112, 320]


def test_a_zoom_2_project_caches_zoomed_features_and_trains_from_them(
    make_stack: Any, make_api: Any
) -> None:
    stack: Stack = make_stack("postgresql", "redis")
    api: Api = make_api(stack)
    project = create_scene_project(
        api,
        model_architecture="efficientnet_lite0",
        encoder_zoom=2,
        max_iterations=40,
        validate_every=10,
    )
    everything = project.pool + project.validation
    base = f"/projects/{project.id}"
    stack.start_worker()
    wait_for_ingest_jobs(api, stack, project.id)
    cached = _feature_rows(api, everything, channels=ZOOMED_LITE0_CHANNELS)
    assert sorted(cached) == sorted(everything)

    first = _labeling_round(api, stack, project)
    _answer_and_close(api, stack, project, first["id"])
    second = _labeling_round(api, stack, project)
    metrics = _round_model(api, project, second["id"])["metrics"]
    config = metrics["model_config"]
    assert (config["kind"], config["encoder_zoom"]) == ("efficientnet_lite0", 2)
    assert metrics["from_cached_features"] is True
    assert metrics["feature_cache"]["computed"] == 0
    assert metrics["feature_cache"]["hits"] == metrics["train_images"] + 4
    assert [len(q["superpixel_ids"]) for q in second["queries"]]
    [row] = [r for r in api.get(f"{base}/dashboard/rounds") if r["id"] == second["id"]]
    assert (row["model_kind"], row["model_encoder_zoom"]) == ("efficientnet_lite0", 2)


def test_a_round_fine_tunes_only_a_model_of_the_projects_zoom(
    make_stack: Any, make_api: Any
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project_id = api.post(
        "/projects",
        expect=201,
        json={
            "name": "Small",
            "classes": [{"name": "a", "colour": "#000000"}, {"name": "b", "colour": "#ffffff"}],
        },
    )["id"]
    with api.world.factory() as session:
        project = session.get(Project, project_id)
        assert project is not None and project.encoder_zoom == 1
        at_1 = model_config(stack.settings, 2, project)
        project.encoder_zoom = 2
        at_2 = model_config(stack.settings, 2, project)
        assert at_2.encoder_zoom == 2 and at_2 != at_1
        # A model stored before zooms existed records no encoder_zoom: it ran at 1.
        old_metrics = config_metrics(at_1)
        del old_metrics["model_config"]["encoder_zoom"]
        rows = [
            ModelCheckpoint(
                project_id=project_id, architecture="unet", checkpoint=b"", metrics=metrics
            )
            for metrics in (old_metrics, config_metrics(at_2), config_metrics(at_1))
        ]
        session.add_all(rows)
        session.commit()
        ids = [row.id for row in rows]

        newest_at_2 = latest_checkpoint(session, project_id, at_2)
        assert newest_at_2 is not None and newest_at_2.id == ids[1]
        newest_at_1 = latest_checkpoint(session, project_id, at_1)
        assert newest_at_1 is not None and newest_at_1.id == ids[2]
        session.delete(newest_at_1)
        session.flush()
        oldest = latest_checkpoint(session, project_id, at_1)
        assert oldest is not None and oldest.id == ids[0]
