"""Train: fine-tune the project's latest model on every labeled pixel, evaluate it on ground
truth, store checkpoint and metrics. One training per project at a time (the ``training``
project lock).

A project's model is a U-Net from scratch or a frozen pretrained encoder under a small
decoder (``projects.model_architecture``); the latter trains only decoder and head, from the
encoder features cached per image (``worker.feature_cache``). Training runs up to the
project's maximum iterations and, with ``early_stopping_patience`` set, stops when the loss
on the validation split's ground truth has not improved for that many evaluations (the best
weights are kept). The reported mIoU is then measured on the test split's ground truth when
there is one, never on the split that chose when to stop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from core.masks import decode_stored_mask
from core.models import Annotation, Image, ModelCheckpoint, Project, Round, Split
from worker import locks
from worker.checkpoints import (
    config_metrics,
    latest_checkpoint,
    load_model,
    model_config,
    round_checkpoint,
    state_bytes,
)
from worker.data import at_model_shape, class_count, image_rgb
from worker.datasets import LazyImages
from worker.engine.evaluation import evaluate_confusion, evaluate_confusion_encoded
from worker.engine.features import EncodedImage
from worker.engine.metrics import iou_per_class, mean_iou
from worker.engine.model import ModelConfig, SegmentationModel, build_model
from worker.engine.reductions import labeled_class_counts
from worker.engine.training import (
    TrainConfig,
    TrainResult,
    train_on_features,
    train_on_partial_masks,
)
from worker.feature_cache import FeatureCache
from worker.jobs import JobLease, LeaseLost

log = logging.getLogger(__name__)

Masks = list[NDArray[np.uint8]]
# Model inputs: images (H, W, 3) uint8, or their cached encoder features.
Inputs = Sequence[NDArray[np.uint8]] | Sequence[EncodedImage]


def labeled_pool_images(
    session: Session, project_id: int, max_pixels: int
) -> tuple[list[Image], Masks]:
    """Pool images with at least one labeled pixel and their partial masks (255 ignored)
    at the model's shape (``max_pixels``), read in one query."""
    rows = session.execute(
        select(Image, Annotation.mask_png)
        .join(Annotation, Annotation.image_id == Image.id)
        .where(Image.project_id == project_id, Image.split == Split.pool)
        .where(Annotation.labeled_pixels > 0)
        .order_by(Image.id)
    ).all()
    masks = [
        at_model_shape(decode_stored_mask(png, image.width, image.height), image, max_pixels)
        for image, png in rows
    ]
    return [image for image, _ in rows], masks


def ground_truth_images(
    session: Session, project_id: int, split: Split, max_pixels: int
) -> tuple[list[Image], Masks]:
    """Images of ``split`` that have ground truth, and their masks at the model's shape
    (``max_pixels``), read in one query."""
    images = list(
        session.scalars(
            select(Image)
            .where(Image.project_id == project_id, Image.split == split)
            .where(Image.ground_truth_png.is_not(None))
            .order_by(Image.id)
            .options(undefer(Image.ground_truth_png))
        )
    )
    masks = [
        at_model_shape(
            decode_stored_mask(image.ground_truth_png, image.width, image.height),
            image,
            max_pixels,
        )
        for image in images
    ]
    return images, masks


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
    low, high = progress_span
    with runtime.session_factory() as session:
        if round_checkpoint(session, round_id) is not None:
            return  # a worker we took over from stored it just before it stalled
        project = session.get(Project, project_id)
        if project is None:
            raise LookupError(f"project {project_id} is gone")
        config = model_config(settings, class_count(session, project_id), project)
        patience, validate_every = project.early_stopping_patience, project.validate_every
        previous = latest_checkpoint(session, project_id, config)
        torch.manual_seed(project_id * 100_003 + round_number)
        model: SegmentationModel
        if previous is not None:
            model = load_model(previous, device)
            iterations = project.finetune_max_iterations or settings.finetune_iterations
        else:
            initial = None if config.pretrained else settings.model_initial_weights
            model = build_model(config, initial).to(device)
            iterations = project.max_iterations or settings.train_iterations
        previous_id = previous.id if previous is not None else None
        limit = settings.model_max_pixels
        pool_images, masks = labeled_pool_images(session, project_id, limit)
        val_images, val_masks = ground_truth_images(session, project_id, Split.validation, limit)
        test_images, test_masks = ground_truth_images(session, project_id, Split.test, limit)
        from_features = config.pretrained and config.freeze_encoder
        ids = [[image.id for image in images] for images in (pool_images, val_images, test_images)]
    cache = FeatureCache(model, device, settings.scoring_batch_size, settings.model_max_pixels)
    feature_seconds = time.perf_counter()
    # The decoded-image budget: half for the labeled images, a quarter for each held-out split.
    budget = settings.train_image_cache_mb * 2**20
    inputs, val_inputs, test_inputs = (
        _model_inputs(lease, cache if from_features else None, image_ids, (low, part), share)
        for image_ids, part, share in (
            (ids[0], "labeled images", budget // 2),
            (ids[1], "validation images", budget // 4),
            (ids[2], "test images", budget // 4),
        )
    )
    feature_seconds = time.perf_counter() - feature_seconds
    early = patience is not None and len(val_masks) > 0
    train_config = TrainConfig(
        iterations=iterations,
        batch_size=settings.train_batch_size,
        learning_rate=settings.learning_rate,
        # Cached features are of whole images (a crop would need the encoder again).
        crop_size=None if from_features else settings.train_crop_size,
        class_weights=settings.class_weights,
        validate_every=validate_every if early else 0,
        patience=patience or 1,
        bf16=device.type == "cuda",
    )

    def on_iteration(iteration: int, loss: float) -> None:
        lease.check()
        lease.report(
            low + (high - low) * 0.95 * iteration / iterations,
            f"training: iteration {iteration}/{iterations}, loss {loss:.3f} "
            f"({len(masks)} images{', early stopping on' if early else ''})",
        )

    result = _fit(
        model,
        inputs,
        masks,
        (val_inputs, val_masks) if early else None,
        train_config,
        on_iteration,
        np.random.default_rng([project_id, round_number]),
        device,
    )
    lease.report(low + (high - low) * 0.95, "training: evaluating on ground truth")
    metrics: dict[str, Any] = {
        **config_metrics(config),
        "round": round_number,
        "fine_tuned_from": previous_id,
        "train_images": len(masks),
        "labeled_pixels": int(sum(int((mask != 255).sum()) for mask in masks)),
        "labeled_class_counts": labeled_class_counts(masks, config.num_classes).tolist(),
        "iterations": result.iterations_run,
        "max_iterations": iterations,
        "stopped_early": result.stopped_early,
        "early_stopping_patience": patience if early else None,
        "validate_every": validate_every if early else None,
        "best_iteration": result.best_iteration,
        "best_validation_loss": result.best_validation_loss,
        "final_loss": result.losses[-1] if result.losses else None,
        "validation_images": len(val_masks),
        "test_images": len(test_masks),
        "device": device.type,
        "from_cached_features": from_features,
    }
    if from_features:
        metrics["feature_cache"] = {
            "hits": cache.hits,
            "computed": cache.misses,
            "stored_bytes": cache.stored_bytes,
            "seconds": round(feature_seconds, 3),
        }
    # Never report the split that chose when to stop: the test split when it has ground
    # truth, else the validation split (then marked as also used for stopping).
    measured = (test_inputs, test_masks, "test") if early and test_masks else None
    if measured is None and val_masks:
        measured = (val_inputs, val_masks, "validation")
    if measured is not None:
        matrix = _confusion(model, measured[0], measured[1], config, device)
        metrics["miou"] = mean_iou(matrix)
        metrics["per_class_iou"] = [
            None if np.isnan(v) else float(v) for v in iou_per_class(matrix)
        ]
        metrics["miou_split"] = measured[2]
        metrics["miou_split_used_for_stopping"] = early and measured[2] == "validation"
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
                architecture=config.kind,
                checkpoint=checkpoint,
                metrics=metrics,
            )
        )
        session.commit()
    log.info("round %s: model trained in %.1f s: %s", round_id, metrics["seconds"], metrics)


def _model_inputs(
    lease: JobLease,
    cache: FeatureCache | None,
    image_ids: list[int],
    report: tuple[float, str],
    cache_bytes: int,
) -> Inputs:
    """Pixels of the images (at the model's shape), or (with a cache) their encoder
    features, as a lazy sequence that reads each when the training or evaluation indexes it
    (``worker.datasets``); features missing from the cache are computed first, a batch at a
    time."""
    factory, max_pixels = lease.runtime.session_factory, lease.runtime.settings.model_max_pixels
    if cache is None:

        def pixels(image_id: int) -> NDArray[np.uint8]:
            with factory() as session:
                return image_rgb(session, image_id, max_pixels)

        return LazyImages(image_ids, pixels, lambda array: array.nbytes, cache_bytes)
    lease.report(report[0], f"training: encoder features of {len(image_ids)} {report[1]}")
    for start in range(0, len(image_ids), cache.batch_size):
        lease.check()
        with factory() as session:
            images = list(
                session.scalars(
                    select(Image).where(Image.id.in_(image_ids[start : start + cache.batch_size]))
                )
            )
            cache.features(session, images)  # computes and stores what is missing

    def features(image_id: int) -> EncodedImage:
        with factory() as session:
            image = session.get(Image, image_id)
            if image is None:
                raise LookupError(f"image {image_id} is gone")
            found = cache.cached(session, [image], count_hits=False)
            return cache.features(session, [image], found)[0]

    return LazyImages(image_ids, features, lambda encoded: encoded.nbytes, cache_bytes)


def _fit(
    model: SegmentationModel,
    inputs: Inputs,
    masks: Masks,
    validation: tuple[Inputs, Masks] | None,
    config: TrainConfig,
    on_iteration: Callable[[int, float], None],
    rng: np.random.Generator,
    device: torch.device,
) -> TrainResult:
    if inputs and isinstance(inputs[0], EncodedImage):
        return train_on_features(
            model,
            cast(Sequence[EncodedImage], inputs),
            masks,
            config,
            rng,
            device,
            validation=cast(tuple[Sequence[EncodedImage], Masks] | None, validation),
            on_iteration=on_iteration,
        )
    return train_on_partial_masks(
        model,
        cast(Sequence[NDArray[np.uint8]], inputs),
        masks,
        config,
        rng,
        device,
        validation=cast(tuple[Sequence[NDArray[np.uint8]], Masks] | None, validation),
        on_iteration=on_iteration,
    )


def _confusion(
    model: SegmentationModel,
    inputs: Inputs,
    masks: Masks,
    config: ModelConfig,
    device: torch.device,
) -> NDArray[np.int64]:
    if inputs and isinstance(inputs[0], EncodedImage):
        encoded = cast(Sequence[EncodedImage], inputs)
        return evaluate_confusion_encoded(model, encoded, masks, config.num_classes, device)
    return evaluate_confusion(
        model, cast(Sequence[NDArray[np.uint8]], inputs), masks, config.num_classes, device
    )
