"""Score: MC-dropout uncertainty over the pool, split into chunk jobs that any number of
workers share. Each chunk stores per-image and per-superpixel scores (and an uncertainty
PNG) in ``image_scores``; the last chunk to end hands the round back to its driver."""

from __future__ import annotations

import functools
from collections.abc import Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker, undefer

from core.dispatch import SCORE_JOB, BrokerUnavailable, send_job
from core.models import (
    Image,
    ImageScore,
    ImageScoring,
    Job,
    JobStatus,
    Project,
    Round,
    SuperpixelMap,
)
from core.models.base import utc_now
from core.superpixel_codec import decode_superpixels
from core.superpixel_maps import current_maps
from worker.checkpoints import load_model, round_checkpoint
from worker.data import (
    answered,
    asked_superpixels,
    at_model_shape,
    class_count,
    images_rgb,
    open_pool_images,
    pack_classes,
    pack_counts,
    pack_floats,
    partial_masks,
    png_bytes,
)
from worker.engine.features import EncodedImage
from worker.engine.model import SegmentationModel
from worker.engine.reductions import (
    class_balance_weights,
    superpixel_majority_classes,
    unlabeled_pixel_counts,
)
from worker.engine.scoring import max_pixel_score, quantize_scores, score_encoded, score_images
from worker.feature_cache import FeatureCache
from worker.jobs import JobLease, eta
from worker.prefetch import prefetched
from worker.runtime import WorkerRuntime

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


def pool_images_to_score(session: Session, project: Project) -> list[int]:
    """Ready pool images with at least one unlabeled pixel and a current superpixel map."""
    return list(session.scalars(open_pool_images(project, Image.id)))


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
    project = session.get(Project, round_.project_id)
    if project is None:
        raise LookupError(f"project {round_.project_id} is gone")
    todo = [i for i in pool_images_to_score(session, project) if i not in scored]
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


@dataclass
class PoolBatch:
    """Pool images of one scoring batch, read and decoded: each with its current map's id
    and superpixel count, its not-yet-asked pixels per superpixel (counted at full size),
    superpixel ids and pixels not to ask about again at the model's (h, w), and the model
    input, (h, w, 3) uint8 pixels or cached encoder features (None: to compute)."""

    images: list[Image]
    map_ids: list[int]
    map_counts: list[int]
    unlabeled: list[NDArray[np.int64]]
    superpixels: list[NDArray[np.integer]]
    known: list[NDArray[np.bool_]]
    pixels: list[NDArray[np.uint8]] | None
    encoded: list[EncodedImage | None] | None


@dataclass
class PoolScorer:
    """Scores pool images under one round's model, a batch at a time.

    ``batches()`` reads and decodes each batch with a few queries (not one per image) and,
    with ``prefetch``, the next batch while the current one is scored. The global torch
    seed is set once, from the round and the first image, so a chunk scores the same with
    the read-ahead on or off (the reading thread draws no random numbers).
    """

    session_factory: sessionmaker[Session]
    project_id: int
    round_id: int
    model: SegmentationModel
    device: torch.device
    method: str
    samples: int
    maximum: float
    options: ScoringOptions
    cache: FeatureCache | None
    batch_size: int
    prefetch: bool = True
    # Larger images are scored downscaled to this many pixels (TESSERA_MODEL_MAX_PIXELS).
    max_pixels: int | None = None

    def batches(self, image_ids: Sequence[int]) -> Generator[PoolBatch, None, None]:
        """Batches of ``image_ids`` not scored in the round yet that have a current map."""
        groups = [
            list(image_ids[start : start + self.batch_size])
            for start in range(0, len(image_ids), self.batch_size)
        ]
        loads = [functools.partial(self.read, ids) for ids in groups]
        if image_ids:
            torch.manual_seed(self.round_id * 1_000_003 + int(image_ids[0]))
        yield from prefetched(loads, depth=1 if self.prefetch else 0)

    def read(self, image_ids: list[int]) -> PoolBatch:
        with self.session_factory() as session:
            project = session.get(Project, self.project_id)
            if project is None:
                raise LookupError(f"project {self.project_id} is gone")
            done = set(
                session.scalars(
                    select(ImageScore.image_id).where(
                        ImageScore.round_id == self.round_id, ImageScore.image_id.in_(image_ids)
                    )
                )
            )
            todo = [i for i in image_ids if i not in done]
            maps = current_maps(session, project, todo, undefer(SuperpixelMap.labels_zlib))
            found = {
                image.id: image
                for image in session.scalars(select(Image).where(Image.id.in_(list(maps))))
            }
            # Without a current map an image is not scored: its map is being recomputed
            # after a settings change, and the round waits for that (worker.tasks.rounds).
            images = [found[i] for i in todo if i in found]
            masks = partial_masks(session, images)
            asked = asked_superpixels(session, [maps[image.id].id for image in images])
            unlabeled: list[NDArray[np.int64]] = []
            superpixels: list[NDArray[np.integer]] = []
            known: list[NDArray[np.bool_]] = []
            for image in images:
                superpixel_map = maps[image.id]
                labels = decode_superpixels(
                    superpixel_map.labels_zlib, superpixel_map.dtype, image.width, image.height
                )
                is_known = answered(labels, masks[image.id], asked[superpixel_map.id])
                # Budgets count full-size pixels; the model sees the (maybe) smaller shape.
                unlabeled.append(unlabeled_pixel_counts(labels, is_known, superpixel_map.count))
                if self.max_pixels is not None:
                    labels = at_model_shape(labels, image, self.max_pixels)
                    is_known = at_model_shape(is_known, image, self.max_pixels)
                superpixels.append(labels)
                known.append(is_known)
            pixels = encoded = None
            if self.cache is None:
                decoded = images_rgb(session, [image.id for image in images], self.max_pixels)
                pixels = [decoded[image.id] for image in images]
            else:
                encoded = self.cache.cached(session, images)
            session.expunge_all()  # the rows travel to the scoring thread, detached
        return PoolBatch(
            images,
            [maps[image.id].id for image in images],
            [maps[image.id].count for image in images],
            unlabeled,
            superpixels,
            known,
            pixels,
            encoded,
        )

    def score(self, batch: PoolBatch) -> list[ImageScore]:
        """The batch's ``image_scores`` rows (not added to any session)."""
        if not batch.images:
            return []
        common: dict[str, Any] = {
            "method": self.method,
            "samples": self.samples,
            "device": self.device,
            "batch_size": len(batch.images),
            "bf16": self.device.type == "cuda",
            "image_score_mode": self.options.image_score_mode,
            "background_classes": self.options.background_classes,
            "class_weights": self.options.class_weights,
        }
        if batch.encoded is not None and self.cache is not None:
            # Features not cached yet are computed here, on the model's thread.
            with self.session_factory() as session:
                encoded = self.cache.features(session, batch.images, batch.encoded)
            results = score_encoded(self.model, encoded, batch.superpixels, batch.known, **common)
        else:
            assert batch.pixels is not None
            results = score_images(
                self.model, batch.pixels, batch.superpixels, batch.known, **common
            )
        rows = []
        for image, map_id, count, unlabeled, labels, result in zip(
            batch.images,
            batch.map_ids,
            batch.map_counts,
            batch.unlabeled,
            batch.superpixels,
            results,
            strict=True,
        ):
            rows.append(
                ImageScore(
                    round_id=self.round_id,
                    image_id=image.id,
                    superpixel_map_id=map_id,
                    image_score=None
                    if result.image_score != result.image_score
                    else result.image_score,
                    superpixel_scores=pack_floats(result.superpixel_scores),
                    unlabeled_pixels=pack_counts(unlabeled),
                    # What the model predicts there, offered to annotators as a pre-fill.
                    superpixel_classes=pack_classes(
                        superpixel_majority_classes(result.predicted, labels, count)
                    ),
                    uncertainty_png=png_bytes(quantize_scores(result.pixel_scores, self.maximum)),
                )
            )
        return rows


def score_chunk(lease: JobLease) -> None:
    """Scores the chunk's images under the round's model, one commit per batch."""
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
        scorer = PoolScorer(
            runtime.session_factory,
            project.id,
            round_.id,
            model,
            runtime.device,
            project.uncertainty.value,
            project.mc_samples,
            max_pixel_score(project.uncertainty.value, class_count(session, project.id)),
            ScoringOptions.of(project, checkpoint.metrics or {}),
            FeatureCache(
                model,
                runtime.device,
                runtime.settings.scoring_batch_size,
                runtime.settings.model_max_pixels,
            )
            if model.config.pretrained and model.config.freeze_encoder
            else None,
            runtime.settings.scoring_batch_size,
            prefetch=runtime.settings.scoring_prefetch,
            max_pixels=runtime.settings.model_max_pixels,
        )
        round_id = round_.id
    if parent is not None:
        _renew_parent(lease, parent.id, round_id, total)
    done = 0
    batches = scorer.batches(image_ids)
    # A batch's rows are committed in a writer thread while the next batch is scored.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scores") as writer:
        stored: Future[None] | None = None
        try:
            for batch in batches:
                lease.check()
                rows = scorer.score(batch)
                if stored is not None:
                    stored.result()  # the previous write's error (a lost lease) stops here
                stored = writer.submit(_store_scores, lease, round_id, rows)
                done = min(done + scorer.batch_size, len(image_ids))
                message = f"scored {done}/{len(image_ids)} images"
                lease.report(done / max(len(image_ids), 1), message)
            if stored is not None:
                stored.result()
        finally:
            batches.close()  # stops the read-ahead when a check or a batch fails
    lease.stop()
    with runtime.session_factory() as session:
        lease.finish(session, f"scored {len(image_ids)} pool images")
        session.commit()


def _store_scores(lease: JobLease, round_id: int, rows: list[ImageScore]) -> None:
    """One commit for a batch's rows, fenced; rows that an earlier attempt of the chunk
    stored meanwhile are kept and ours dropped."""
    if not rows:
        return
    for _ in range(3):
        with lease.runtime.session_factory() as session:
            stored = set(
                session.scalars(
                    select(ImageScore.image_id).where(
                        ImageScore.round_id == round_id,
                        ImageScore.image_id.in_([row.image_id for row in rows]),
                    )
                )
            )
            session.add_all([_fresh(row) for row in rows if row.image_id not in stored])
            lease.fence(session, heartbeat_at=utc_now())
            try:
                session.commit()
                return
            except IntegrityError:  # stored between our read and our commit: read again
                session.rollback()
    raise RuntimeError(f"scores of round {round_id} kept conflicting with another attempt")


def _fresh(row: ImageScore) -> ImageScore:
    """A new, unsaved copy of a score row (a row once added to a rolled-back session keeps
    state from that session)."""
    columns = ImageScore.__table__.columns.keys()
    return ImageScore(**{k: getattr(row, k) for k in columns if k not in ("id", "created_at")})


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
