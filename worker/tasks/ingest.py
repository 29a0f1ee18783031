"""Ingest: superpixels for newly uploaded images, stored compressed; images become ready.
For a project with a frozen pretrained encoder, each image's encoder features are then
computed and cached too (``worker.feature_cache``). The same job recomputes both for every
image when the lead changes the superpixel size or algorithm or the model
(``backend.projects.service.create_recompute_jobs``); rounds wait for it and then use only
current maps."""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Image, ImageStatus, Job, ModelArchitecture, Project, SuperpixelMap
from core.settings import Settings
from core.superpixel_maps import current_map, store_superpixel_map
from worker.checkpoints import model_config
from worker.data import class_count, image_rgb
from worker.engine.model import build_model
from worker.engine.superpixels import compute_superpixels, superpixels_from_downscaled
from worker.feature_cache import FeatureCache
from worker.jobs import JobLease
from worker.tasks.rounds import wake_rounds_waiting_for_ingest

log = logging.getLogger(__name__)


def ensure_current_map(
    session: Session, image: Image, project: Project, max_pixels: int | None = None
) -> SuperpixelMap:
    """The image's map for the project's current superpixel size and algorithm, computed
    and stored (flushed) when missing, e.g. after the lead changed the size.

    An image of more than ``max_pixels`` pixels (``TESSERA_WORK_MAX_PIXELS``) is segmented
    on a downscaled copy and the labels enlarged back to its full size (nearest), which
    bounds the worker's memory and time; annotators and masks still get a full-size map.
    """
    existing = current_map(session, image.id, project)
    if existing is not None:
        return existing
    algorithm = project.superpixel_algorithm.value
    if max_pixels is not None and image.width * image.height > max_pixels:
        labels: NDArray[np.integer] = superpixels_from_downscaled(
            image_rgb(session, image.id, max_pixels),
            image.height,
            image.width,
            project.superpixel_size,
            algorithm,
        )
    else:
        labels = compute_superpixels(
            image_rgb(session, image.id), project.superpixel_size, algorithm
        )
    return store_superpixel_map(
        session,
        image,
        labels,
        size=project.superpixel_size,
        algorithm=project.superpixel_algorithm.value,
    )


def _image_ids(lease: JobLease) -> tuple[int, list[int]]:
    with lease.runtime.session_factory() as session:
        job = session.get(Job, lease.job_id)
        if job is None or job.project_id is None:
            raise LookupError(f"ingest job {lease.job_id} has no project")
        ids = (job.payload or {}).get("image_ids")
        if ids is None:  # a catch-up job: every image of the project still processing
            ids = list(
                session.scalars(
                    select(Image.id)
                    .where(Image.project_id == job.project_id)
                    .where(Image.status == ImageStatus.processing)
                    .order_by(Image.id)
                )
            )
        return job.project_id, [int(i) for i in ids]


def _refuse_over_cap(image: Image, settings: Settings) -> None:
    """Checked before any decoding: an image over the pixel cap (stored before the cap was
    lowered) fails the job with the reason instead of taking the worker's memory."""
    pixels = image.width * image.height
    if pixels > settings.max_image_pixels:
        raise ValueError(
            f"image {image.id} ({image.filename}) is {image.width}x{image.height} = {pixels} "
            f"pixels, over TESSERA_MAX_IMAGE_PIXELS = {settings.max_image_pixels}; the worker "
            "does not decode it (delete it or raise the limit)"
        )


def ingest_images(lease: JobLease) -> None:
    """Computes and stores the superpixel map of each image of the job, one commit per image
    (a lost worker loses one image's work), skipping images already done."""
    project_id, image_ids = _image_ids(lease)
    cache, skipped = _feature_cache(lease, project_id)
    done = 0
    for position, image_id in enumerate(image_ids):
        lease.check()
        with lease.runtime.session_factory() as session:
            project = session.get(Project, project_id)
            image = session.get(Image, image_id)
            if project is None:
                raise LookupError(f"project {project_id} is gone")
            if image is not None and current_map(session, image.id, project) is None:
                _refuse_over_cap(image, lease.runtime.settings)
                ensure_current_map(session, image, project, lease.runtime.settings.work_max_pixels)
                done += 1
            if image is not None:
                image.status = ImageStatus.ready
            progress = (position + 1) / max(len(image_ids), 1)
            message = f"superpixels: {position + 1}/{len(image_ids)} images"
            lease.report(progress, message)
            lease.fence(session, progress=progress, message=message)
            session.commit()
        if cache is not None:
            # After the image is ready: features are a cache that first use can fill too.
            with lease.runtime.session_factory() as session:
                image = session.get(Image, image_id)
                if image is not None:
                    cache.features(session, [image])
    lease.stop()
    summary = f"superpixels of {len(image_ids)} images ({done} computed)"
    if cache is not None:
        summary += f"; encoder features of {cache.misses} images computed, {cache.hits} cached"
    elif skipped:
        summary += f"; encoder features left for first use: {skipped}"
    with lease.runtime.session_factory() as session:
        lease.finish(session, summary[:1000])
        session.commit()
    wake_rounds_waiting_for_ingest(lease.runtime, project_id)


def _feature_cache(lease: JobLease, project_id: int) -> tuple[FeatureCache | None, str]:
    """A cache filler for the project's frozen pretrained encoder (None for a U-Net), and
    why there is none when its weights cannot be loaded here (training reports that)."""
    runtime = lease.runtime
    with runtime.session_factory() as session:
        project = session.get(Project, project_id)
        if project is None or project.model_architecture == ModelArchitecture.unet:
            return None, ""
        config = model_config(runtime.settings, class_count(session, project_id), project)
    if not config.freeze_encoder:
        return None, ""
    try:
        model = build_model(config).to(runtime.device)
    except ValueError as error:
        log.warning("project %s: no encoder features at ingest: %s", project_id, error)
        return None, str(error)
    settings = runtime.settings
    cache = FeatureCache(
        model, runtime.device, settings.scoring_batch_size, settings.model_max_pixels
    )
    return cache, ""
