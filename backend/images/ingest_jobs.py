"""Superpixel ingest jobs for new images: created with the images, sent after the commit."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.dispatch import INGEST_JOB, BrokerUnavailable, send_job
from core.models import Job, JobStatus
from core.models.base import utc_now
from core.settings import Settings


def create_ingest_jobs(
    session: Session,
    project_id: int,
    image_ids: list[int],
    settings: Settings,
    *,
    what: str = "superpixels",
) -> list[Job]:
    """Jobs of at most ``TESSERA_INGEST_CHUNK_IMAGES`` images each, so several workers share
    a large upload; flushes, the caller commits (with the images) and then sends them.
    ``what``: the work named in the jobs' messages."""
    size = settings.ingest_chunk_images
    jobs = [
        Job(
            project_id=project_id,
            kind=INGEST_JOB,
            status=JobStatus.queued,
            message=f"{what} for {len(image_ids[start : start + size])} images: queued",
            payload={"image_ids": image_ids[start : start + size]},
        )
        for start in range(0, len(image_ids), size)
    ]
    session.add_all(jobs)
    session.flush()
    return jobs


def send_ingest_jobs(session: Session, jobs: list[Job], settings: Settings) -> list[Job]:
    """Sends committed ingest jobs; an unreachable broker fails them visibly (the images
    stay ``processing`` until the lead retries the job). Commits; returns the failed jobs."""
    failed = []
    for job in jobs:
        try:
            send_job(settings, job)
        except BrokerUnavailable as error:
            job.status = JobStatus.failed
            job.error = f"could not reach the task broker: {error}"
            job.finished_at = utc_now()
            failed.append(job)
    session.commit()
    return failed
