"""Ingest: superpixels for newly uploaded images, stored compressed; images become ready."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.images.service import store_superpixel_map
from backend.models import Image, ImageStatus, Job, Project, SuperpixelMap
from worker.data import current_map, image_rgb
from worker.engine.superpixels import compute_superpixels
from worker.jobs import JobLease


def ensure_current_map(session: Session, image: Image, project: Project) -> SuperpixelMap:
    """The image's map for the project's current superpixel size and algorithm, computed
    and stored (flushed) when missing, e.g. after the lead changed the size."""
    existing = current_map(session, image, project)
    if existing is not None:
        return existing
    labels = compute_superpixels(
        image_rgb(session, image.id), project.superpixel_size, project.superpixel_algorithm.value
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


def ingest_images(lease: JobLease) -> None:
    """Computes and stores the superpixel map of each image of the job, one commit per image
    (a lost worker loses one image's work), skipping images already done."""
    project_id, image_ids = _image_ids(lease)
    done = 0
    for position, image_id in enumerate(image_ids):
        lease.check()
        with lease.runtime.session_factory() as session:
            project = session.get(Project, project_id)
            image = session.get(Image, image_id)
            if project is None:
                raise LookupError(f"project {project_id} is gone")
            if image is not None and current_map(session, image, project) is None:
                ensure_current_map(session, image, project)
                done += 1
            if image is not None:
                image.status = ImageStatus.ready
            progress = (position + 1) / max(len(image_ids), 1)
            message = f"superpixels: {position + 1}/{len(image_ids)} images"
            lease.report(progress, message)
            lease.fence(session, progress=progress, message=message)
            session.commit()
    lease.stop()
    with lease.runtime.session_factory() as session:
        lease.finish(session, f"superpixels of {len(image_ids)} images ({done} computed)")
        session.commit()
