"""Train: fine-tune the project's latest model on every labeled pixel, evaluate it on the
validation split's ground truth, store checkpoint and metrics. One training per project at a
time (the ``training`` project lock)."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Annotation, Image, ModelCheckpoint, Round, Split
from worker import locks
from worker.checkpoints import (
    ARCHITECTURE,
    config_metrics,
    latest_checkpoint,
    load_model,
    model_config,
    round_checkpoint,
    state_bytes,
)
from worker.data import class_count, ground_truth, image_rgb, partial_mask
from worker.engine.evaluation import evaluate_confusion
from worker.engine.metrics import iou_per_class, mean_iou
from worker.engine.model import UNet, build_model
from worker.engine.training import TrainConfig, train_on_partial_masks
from worker.jobs import JobLease, LeaseLost

log = logging.getLogger(__name__)

Arrays = tuple[list[NDArray[np.uint8]], list[NDArray[np.uint8]]]


def labeled_training_set(session: Session, project_id: int) -> Arrays:
    """Pool images with at least one labeled pixel and their partial masks (255 ignored)."""
    images = session.scalars(
        select(Image)
        .join(Annotation, Annotation.image_id == Image.id)
        .where(Image.project_id == project_id, Image.split == Split.pool)
        .where(Annotation.labeled_pixels > 0)
        .order_by(Image.id)
    )
    pixels, masks = [], []
    for image in images:
        pixels.append(image_rgb(session, image.id))
        masks.append(partial_mask(session, image))
    return pixels, masks


def validation_set(session: Session, project_id: int) -> Arrays:
    """Validation-split images that have ground truth."""
    images = session.scalars(
        select(Image)
        .where(Image.project_id == project_id, Image.split == Split.validation)
        .where(Image.ground_truth_png.is_not(None))
        .order_by(Image.id)
    )
    pixels, masks = [], []
    for image in images:
        truth = ground_truth(session, image)
        if truth is not None:
            pixels.append(image_rgb(session, image.id))
            masks.append(truth)
    return pixels, masks


def _wait_for_training_lock(lease: JobLease, project_id: int) -> None:
    settings = lease.runtime.settings
    while True:
        lease.check()
        with lease.runtime.session_factory() as session:
            if locks.try_acquire(
                session,
                project_id,
                locks.TRAINING_LOCK,
                lease.holder,
                lease.job_id,
                settings.job_lease_seconds,
            ):
                return
            holder = locks.current_holder(session, project_id, locks.TRAINING_LOCK)
        lease.report(
            lease.progress,
            f"training: waiting for the project's training lock "
            f"(held by {holder.holder if holder else '?'})",
        )
        time.sleep(lease.interval)


def train_round_model(lease: JobLease, round_id: int, progress_span: tuple[float, float]) -> None:
    """Trains and stores the model of round ``round_id`` unless it exists (idempotent)."""
    runtime, settings = lease.runtime, lease.runtime.settings
    with runtime.session_factory() as session:
        round_ = session.get(Round, round_id)
        if round_ is None:
            raise LookupError(f"round {round_id} is gone")
        if round_checkpoint(session, round_id) is not None:
            return
        project_id, round_number = round_.project_id, round_.number
    _wait_for_training_lock(lease, project_id)

    def renew_lock(session: Session) -> bool:
        return locks.renew(
            session, project_id, locks.TRAINING_LOCK, lease.holder, settings.job_lease_seconds
        )

    lease.add_renewal(renew_lock)
    try:
        _train_with_lock(lease, project_id, round_id, round_number, progress_span)
    finally:
        # Stop renewing before letting go, or the next heartbeat would find the lock
        # not ours and take the whole job for lost.
        lease.remove_renewal(renew_lock)
        with runtime.session_factory() as session:
            locks.release(session, project_id, locks.TRAINING_LOCK, lease.holder)


def _train_with_lock(
    lease: JobLease,
    project_id: int,
    round_id: int,
    round_number: int,
    progress_span: tuple[float, float],
) -> None:
    runtime, settings = lease.runtime, lease.runtime.settings
    device = runtime.device
    started = time.perf_counter()
    with runtime.session_factory() as session:
        if round_checkpoint(session, round_id) is not None:
            return  # a worker we took over from stored it just before it stalled
        config = model_config(settings, class_count(session, project_id))
        previous = latest_checkpoint(session, project_id, config)
        images, masks = labeled_training_set(session, project_id)
        validation = validation_set(session, project_id)
        torch.manual_seed(project_id * 100_003 + round_number)
        model: UNet
        if previous is not None:
            model = load_model(previous, device)
            iterations = settings.finetune_iterations
        else:
            model = build_model(config, settings.model_initial_weights).to(device)
            iterations = settings.train_iterations
        previous_id = previous.id if previous is not None else None
    train_config = TrainConfig(
        iterations=iterations,
        batch_size=settings.train_batch_size,
        learning_rate=settings.learning_rate,
        crop_size=settings.train_crop_size,
        class_weights=settings.class_weights,
        bf16=device.type == "cuda",
    )
    low, high = progress_span

    def on_iteration(iteration: int, loss: float) -> None:
        lease.check()
        lease.report(
            low + (high - low) * 0.95 * iteration / iterations,
            f"training: iteration {iteration}/{iterations}, loss {loss:.3f} ({len(images)} images)",
        )

    result = train_on_partial_masks(
        model,
        images,
        masks,
        train_config,
        np.random.default_rng([project_id, round_number]),
        device,
        on_iteration=on_iteration,
    )
    lease.report(low + (high - low) * 0.95, "training: evaluating on the validation split")
    metrics: dict[str, Any] = {
        **config_metrics(config),
        "round": round_number,
        "fine_tuned_from": previous_id,
        "train_images": len(images),
        "labeled_pixels": int(sum(int((mask != 255).sum()) for mask in masks)),
        "iterations": result.iterations_run,
        "final_loss": result.losses[-1] if result.losses else None,
        "validation_images": len(validation[0]),
        "device": device.type,
    }
    if validation[0]:
        matrix = evaluate_confusion(model, validation[0], validation[1], config.num_classes, device)
        metrics["miou"] = mean_iou(matrix)
        metrics["per_class_iou"] = [
            None if np.isnan(v) else float(v) for v in iou_per_class(matrix)
        ]
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    checkpoint = state_bytes(model)
    lease.check()
    with runtime.session_factory() as session:
        # Fenced twice: the job must still be ours and so must the project's training lock.
        lease.fence(session, progress=high, message="training: model stored")
        if not locks.renew(
            session, project_id, locks.TRAINING_LOCK, lease.holder, settings.job_lease_seconds
        ):
            raise LeaseLost(f"the training lock of project {project_id} was taken over")
        session.add(
            ModelCheckpoint(
                project_id=project_id,
                round_id=round_id,
                architecture=ARCHITECTURE,
                checkpoint=checkpoint,
                metrics=metrics,
            )
        )
        session.commit()
    log.info("round %s: model trained in %.1f s: %s", round_id, metrics["seconds"], metrics)
