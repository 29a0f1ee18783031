"""Recovering from lost workers, on any broker: every worker runs this periodically.

- A running job whose lease ran out (its worker was killed, its machine lost) is taken
  over: released with a fresh lease and its task sent again; the task resumes from the last
  stored step. Its ``TESSERA_JOB_MAX_ATTEMPTS``-th lost worker fails it instead (retryable).
- A queued job whose message is older than five leases is sent again (a broker restarted
  without persistence, a message lost with a killed worker); duplicates are harmless, a
  job runs once (see ``worker.jobs.claim_job``).
- A queued job that was committed but never sent (the API or a round driver died between
  its commit and the send, or the broker refused the send) is sent once it is a lease old:
  the sender normally records ``dispatched_at`` within milliseconds, so a lease leaves it
  time, and a duplicate would be harmless anyway.
- Images still processing with no ingest job to process them (``tessera import``) get one.

Each takeover is a conditional UPDATE, so two watchdogs never both take the same job.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session

from core.dispatch import INGEST_JOB, BrokerUnavailable, send_job
from core.models import Image, ImageStatus, Job, JobStatus
from core.models.base import utc_now
from core.settings import Settings
from worker.jobs import fail_job
from worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

RESEND_AFTER_LEASES = 5
SEND_UNSENT_AFTER_LEASES = 1


def _send(session: Session, settings: Settings, job_id: int) -> bool:
    job = session.get(Job, job_id)
    if job is None:
        return False
    try:
        send_job(settings, job)
    except BrokerUnavailable:
        log.warning("watchdog: broker unreachable; job %s waits for the next check", job_id)
        session.rollback()
        return False
    session.commit()
    return True


def take_over_lapsed_jobs(runtime: WorkerRuntime) -> list[int]:
    """Re-sends (or fails, past the limit) running jobs whose lease ran out; returns their ids."""
    settings = runtime.settings
    now = utc_now()
    taken: list[int] = []
    with runtime.session_factory() as session:
        lapsed = list(
            session.execute(
                select(Job.id, Job.takeovers, Job.worker).where(
                    Job.status == JobStatus.running, Job.lease_expires_at < now
                )
            )
        )
        for job_id, takeovers, worker in lapsed:
            # A job nobody held (a round waiting for its chunks) lost no worker: resend it
            # without counting an attempt.
            lost = 1 if worker is not None else 0
            if lost and takeovers + 1 >= settings.job_max_attempts:
                error = (
                    f"the worker running this job was lost {takeovers + 1} times "
                    f"(last: {worker or 'waiting'}); retry it once the cause is fixed"
                )
                if fail_job(runtime, job_id, worker, error):
                    log.warning("watchdog: job %s failed after %s takeovers", job_id, takeovers)
                continue
            claimed = session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.status == JobStatus.running,
                    Job.lease_expires_at < now,
                )
                .values(
                    worker=None,
                    takeovers=Job.takeovers + lost,
                    lease_expires_at=now + timedelta(seconds=settings.job_lease_seconds),
                    message=f"worker {worker or '?'} lost; sent to another worker",
                )
                .execution_options(synchronize_session=False)
            )
            session.commit()
            if claimed.rowcount == 1 and _send(session, settings, job_id):  # type: ignore[attr-defined]
                log.warning("watchdog: took over job %s from %s", job_id, worker)
                taken.append(job_id)
    return taken


def resend_stale_queued_jobs(runtime: WorkerRuntime) -> list[int]:
    """Sends queued jobs again whose message may be lost (sent more than five leases ago)
    or that were never sent (committed more than a lease ago); returns their ids."""
    settings = runtime.settings
    now = utc_now()
    lost_cutoff = now - timedelta(seconds=settings.job_lease_seconds * RESEND_AFTER_LEASES)
    unsent_cutoff = now - timedelta(seconds=settings.job_lease_seconds * SEND_UNSENT_AFTER_LEASES)
    stale = (
        Job.status == JobStatus.queued,
        or_(
            Job.dispatched_at < lost_cutoff,
            and_(Job.dispatched_at.is_(None), Job.created_at < unsent_cutoff),
        ),
    )
    sent: list[int] = []
    with runtime.session_factory() as session:
        for job_id in list(session.scalars(select(Job.id).where(*stale).order_by(Job.id))):
            # Claimed by the UPDATE (its row lock is held until the commit after the send),
            # so the watchdogs of several workers send a stale job once, not once each.
            claimed = session.execute(
                update(Job)
                .where(Job.id == job_id, *stale)
                .values(dispatched_at=now)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                continue
            if _send(session, settings, job_id):
                sent.append(job_id)
    return sent


def ingest_forgotten_images(runtime: WorkerRuntime) -> list[int]:
    """One catch-up ingest job per project with processing images that no ingest job
    created after them covers (e.g. imported from the command line)."""
    settings = runtime.settings
    grace = utc_now() - timedelta(seconds=settings.job_lease_seconds)
    created: list[int] = []
    with runtime.session_factory() as session:
        covered = exists().where(
            Job.project_id == Image.project_id,
            Job.kind == INGEST_JOB,
            Job.created_at >= Image.created_at,
        )
        projects = list(
            session.scalars(
                select(Image.project_id)
                .where(Image.status == ImageStatus.processing, Image.created_at < grace)
                .where(~covered)
                .distinct()
            )
        )
        for project_id in projects:
            job = Job(
                project_id=project_id,
                kind=INGEST_JOB,
                status=JobStatus.queued,
                message="superpixels for images added without an ingest job",
            )
            session.add(job)
            session.commit()
            if _send(session, settings, job.id):
                created.append(job.id)
    return created


def check_jobs(runtime: WorkerRuntime) -> None:
    """One watchdog pass (every ``lease/2`` seconds in each worker)."""
    try:
        taken = take_over_lapsed_jobs(runtime)
        resent = resend_stale_queued_jobs(runtime)
        ingests = ingest_forgotten_images(runtime)
        if taken or resent or ingests:
            log.info("watchdog: took over %s, re-sent %s, new ingest %s", taken, resent, ingests)
    except Exception:
        log.exception("watchdog pass failed; trying again at the next one")
    finally:
        # No connection stays open in the worker's main process, so pool processes forked
        # later never inherit one.
        runtime.engine.dispose()
