"""Score: MC-dropout uncertainty over the pool, split into chunk jobs that any number of
workers share. Each chunk stores per-image and per-superpixel scores (and an uncertainty
PNG) in ``image_scores``; the last chunk to end hands the round back to its driver."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.dispatch import SCORE_JOB, BrokerUnavailable, send_job
from core.models import (
    Annotation,
    Image,
    ImageScore,
    ImageScoring,
    ImageStatus,
    Job,
    JobStatus,
    Project,
    Round,
    Split,
)
from core.models.base import utc_now
from worker.checkpoints import load_model, round_checkpoint
from worker.data import (
    answered,
    class_count,
    image_rgb,
    pack_classes,
    pack_counts,
    pack_floats,
    partial_mask,
    png_bytes,
    superpixel_labels,
)
from worker.engine.model import SegmentationModel
from worker.engine.reductions import (
    class_balance_weights,
    superpixel_majority_classes,
    unlabeled_pixel_counts,
)
from worker.engine.scoring import max_pixel_score, quantize_scores, score_encoded, score_images
from worker.feature_cache import FeatureCache
from worker.jobs import JobLease, eta
from worker.runtime import WorkerRuntime
from worker.tasks.ingest import ensure_current_map

# The round job's progress while its pool is scored: from the end of training to here.
SCORING_SPAN = (0.6, 0.95)


@dataclass(frozen=True)
class ScoringOptions:
    """The project's image score and class-balance settings, as the engine takes them."""

    image_score_mode: str = "mean"
    background_classes: tuple[int, ...] = ()
    class_weights: NDArray[np.float64] | None = None

    @classmethod
    def of(cls, project: Project, model_metrics: dict[str, Any]) -> ScoringOptions:
        """``model_metrics``: the round model's metrics, whose ``labeled_class_counts`` (what
        it was trained on) weight the classes when the project balances them."""
        weights = None
        counts = model_metrics.get("labeled_class_counts")
        if project.class_balance and isinstance(counts, list) and len(counts) >= 2:
            weights = class_balance_weights(np.asarray(counts, dtype=np.int64))
        foreground = project.image_score == ImageScoring.foreground_weighted
        return cls(
            image_score_mode="foreground" if foreground else "mean",
            background_classes=tuple(project.background_classes or ()) if foreground else (),
            class_weights=weights,
        )


def pool_images_to_score(session: Session, project_id: int) -> list[int]:
    """Ready pool images with at least one unlabeled pixel."""
    return list(
        session.scalars(
            select(Image.id)
            .join(Annotation, Annotation.image_id == Image.id)
            .where(Image.project_id == project_id, Image.split == Split.pool)
            .where(Image.status == ImageStatus.ready)
            .where(Annotation.labeled_pixels < Image.width * Image.height)
            .order_by(Image.id)
        )
    )


def create_score_chunks(session: Session, lease: JobLease, round_: Round) -> tuple[list[int], int]:
    """Chunk jobs for the pool images this round has not scored yet, and how many images
    the round scores in all (nothing left: no jobs).

    Unfinished chunks of an earlier attempt are dropped first (a retry re-creates them); a
    chunk still running from it finds its row gone and stops. The caller commits.
    """
    settings = lease.runtime.settings
    session.execute(
        delete(Job)
        .where(Job.round_id == round_.id, Job.kind == SCORE_JOB)
        .where(Job.status != JobStatus.succeeded)
        .execution_options(synchronize_session=False)
    )
    scored = set(
        session.scalars(select(ImageScore.image_id).where(ImageScore.round_id == round_.id))
    )
    todo = [i for i in pool_images_to_score(session, round_.project_id) if i not in scored]
    size = settings.score_chunk_images
    chunks = [todo[start : start + size] for start in range(0, len(todo), size)]
    jobs = [
        Job(
            project_id=round_.project_id,
            round_id=round_.id,
            kind=SCORE_JOB,
            status=JobStatus.queued,
            message=f"round {round_.number}: scoring {len(chunk)} pool images",
            payload={"image_ids": chunk, "parent_job_id": lease.job_id},
        )
        for chunk in chunks
    ]
    session.add_all(jobs)
    session.flush()
    return [job.id for job in jobs], len(todo) + len(scored)


def scoring_progress(session: Session, round_id: int, total: int) -> float:
    scored = session.scalar(
        select(func.count()).select_from(ImageScore).where(ImageScore.round_id == round_id)
    )
    low, high = SCORING_SPAN
    return low + (high - low) * min(int(scored or 0) / max(total, 1), 1.0)


def _renew_parent(lease: JobLease, parent_id: int, round_id: int, total: int) -> None:
    def renewal(session: Session) -> bool:
        now = utc_now()
        progress = scoring_progress(session, round_id, total)
        started = session.scalar(select(Job.started_at).where(Job.id == parent_id))
        session.execute(
            update(Job)
            .where(Job.id == parent_id, Job.status == JobStatus.running, Job.worker.is_(None))
            .values(
                lease_expires_at=now + timedelta(seconds=lease.lease_seconds),
                progress=progress,
                eta_at=eta(started, progress, now),
            )
            .execution_options(synchronize_session=False)
        )
        return True  # the parent is nobody's while it waits; our chunk is still ours

    lease.add_renewal(renewal)


def score_chunk(lease: JobLease) -> None:
    """Scores the chunk's images under the round's model, one commit per image."""
    runtime = lease.runtime
    with runtime.session_factory() as session:
        job = session.get(Job, lease.job_id)
        round_ = session.get(Round, job.round_id) if job and job.round_id else None
        if job is None or round_ is None:
            raise LookupError(f"scoring job {lease.job_id} has no round")
        project = session.get(Project, round_.project_id)
        assert project is not None
        parent = session.get(Job, int((job.payload or {})["parent_job_id"]))
        total = int(((parent.payload if parent else None) or {}).get("score_images", 1))
        image_ids = [int(i) for i in (job.payload or {}).get("image_ids", [])]
        checkpoint = round_checkpoint(session, round_.id)
        if checkpoint is None:
            raise LookupError(f"round {round_.number} has no model to score with")
        model = load_model(checkpoint, runtime.device)
        options = ScoringOptions.of(project, checkpoint.metrics or {})
        method, samples = project.uncertainty.value, project.mc_samples
        maximum = max_pixel_score(method, class_count(session, project.id))
        round_id, project_id = round_.id, project.id
    cache = (
        FeatureCache(model, runtime.device, runtime.settings.scoring_batch_size)
        if model.config.pretrained and model.config.freeze_encoder
        else None
    )
    if parent is not None:
        _renew_parent(lease, parent.id, round_id, total)
    batch = runtime.settings.scoring_batch_size
    for start in range(0, len(image_ids), batch):
        lease.check()
        _score_batch(
            lease,
            round_id,
            project_id,
            image_ids[start : start + batch],
            model,
            method,
            samples,
            maximum,
            options,
            cache,
        )
        done = min(start + batch, len(image_ids))
        lease.report(done / max(len(image_ids), 1), f"scored {done}/{len(image_ids)} images")
    lease.stop()
    with runtime.session_factory() as session:
        lease.finish(session, f"scored {len(image_ids)} pool images")
        session.commit()


def _score_batch(
    lease: JobLease,
    round_id: int,
    project_id: int,
    image_ids: list[int],
    model: SegmentationModel,
    method: str,
    samples: int,
    maximum: float,
    options: ScoringOptions,
    cache: FeatureCache | None,
) -> None:
    runtime = lease.runtime
    with runtime.session_factory() as session:
        project = session.get(Project, project_id)
        assert project is not None
        done = set(
            session.scalars(
                select(ImageScore.image_id).where(
                    ImageScore.round_id == round_id, ImageScore.image_id.in_(image_ids)
                )
            )
        )
        rows, pixels, maps, known = [], [], [], []
        for image_id in image_ids:
            image = session.get(Image, image_id)
            if image is None or image_id in done:
                continue
            superpixel_map = ensure_current_map(
                session, image, project, lease.runtime.settings.work_max_pixels
            )
            rows.append((image, superpixel_map))
            if cache is None:
                pixels.append(image_rgb(session, image.id))
            labels = superpixel_labels(session, superpixel_map, image)
            maps.append(labels)
            known.append(
                answered(session, image.id, superpixel_map.id, labels, partial_mask(session, image))
            )
        session.commit()  # maps computed for a changed superpixel size
        # A frozen pretrained encoder runs once per image ever: its features are cached.
        encoded = cache.features(session, [image for image, _ in rows]) if cache else None
    if not rows:
        return
    common: dict[str, Any] = {
        "method": method,
        "samples": samples,
        "device": runtime.device,
        "batch_size": len(rows),
        "bf16": runtime.device.type == "cuda",
        "image_score_mode": options.image_score_mode,
        "background_classes": options.background_classes,
        "class_weights": options.class_weights,
    }
    results = (
        score_encoded(model, encoded, maps, known, **common)
        if encoded is not None
        else score_images(model, pixels, maps, known, **common)
    )
    for (image, superpixel_map), labels, is_known, result in zip(
        rows, maps, known, results, strict=True
    ):
        counts = unlabeled_pixel_counts(labels, is_known, superpixel_map.count)
        with runtime.session_factory() as session:
            session.add(
                ImageScore(
                    round_id=round_id,
                    image_id=image.id,
                    superpixel_map_id=superpixel_map.id,
                    image_score=None
                    if result.image_score != result.image_score
                    else result.image_score,
                    superpixel_scores=pack_floats(result.superpixel_scores),
                    unlabeled_pixels=pack_counts(counts),
                    # What the model predicts there, offered to annotators as a pre-fill.
                    superpixel_classes=pack_classes(
                        superpixel_majority_classes(result.predicted, labels, superpixel_map.count)
                    ),
                    uncertainty_png=png_bytes(quantize_scores(result.pixel_scores, maximum)),
                )
            )
            try:
                lease.fence(session, heartbeat_at=utc_now())
                session.commit()
            except IntegrityError:  # scored by an earlier attempt of this chunk
                session.rollback()


def wake_round_if_last_chunk(runtime: WorkerRuntime, chunk_job_id: int) -> None:
    """Sends the round's driver when no chunk of its round is queued or running any more.

    Each chunk counts after its own commit, so the last one to end always sees zero; two
    ending together may both send, and the driver runs once (its claim decides).
    """
    with runtime.session_factory() as session:
        job = session.get(Job, chunk_job_id)
        if job is None or job.round_id is None:
            return
        unfinished = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.round_id == job.round_id, Job.kind == SCORE_JOB)
            .where(Job.status.in_((JobStatus.queued, JobStatus.running)))
        )
        parent = session.get(Job, int((job.payload or {}).get("parent_job_id", 0)))
        if unfinished or parent is None or parent.status != JobStatus.running:
            return
        try:
            send_job(runtime.settings, parent)
        except BrokerUnavailable:
            return  # the parent's lease runs out and a watchdog sends it
        session.commit()
