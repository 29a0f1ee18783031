"""The round driver: a state machine over the round's rows, run by ``tessera.run_round``.

    pending ─▶ training ─▶ scoring ─▶ querying ─▶ labeling ─▶ complete (lead closes it)
        │          (chunk jobs, shared)     ▲
        └── no labeled pixel yet ───────────┘   (first round: random initial images)
    any step ─▶ failed (job.error); the lead's retry puts it back to pending

Before any step the round waits while an ingest job of its project is queued or running
(new uploads, or superpixels/features recomputed after a settings change), so it scores
and picks from current maps only; the last ingest job to end sends it again.

Each run looks at what is stored (the round's model, its scores, its queries) and does the
next step, so a re-delivered message, a retry or a worker taking over a lapsed lease
resumes where the last one stopped. Training and querying run inside this task; scoring is
handed to chunk jobs, whose last one sends this task again.
"""

from __future__ import annotations

import enum
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.dispatch import INGEST_JOB, ROUND_JOB, BrokerUnavailable, send_job
from core.models import Job, JobStatus, Round, RoundStatus
from worker.checkpoints import round_checkpoint
from worker.jobs import JobLease
from worker.runtime import WorkerRuntime
from worker.tasks.query import UNSCORED_STRATEGIES, project_has_labels, write_round_queries
from worker.tasks.score import SCORING_SPAN, create_score_chunks
from worker.tasks.train import train_round_model

log = logging.getLogger(__name__)

TRAINING_SPAN = (0.0, SCORING_SPAN[0])


class Step(enum.Enum):
    wait_for_ingest = "wait_for_ingest"
    initial_query = "initial_query"
    train = "train"
    score = "score"
    wait_for_chunks = "wait_for_chunks"
    query = "query"
    chunk_failed = "chunk_failed"
    done = "done"


def next_step(lease: JobLease, round_id: int) -> tuple[Step, str]:
    """What the round needs next, judged from its stored rows; with a detail message."""
    with lease.runtime.session_factory() as session:
        round_ = session.get(Round, round_id)
        if round_ is None:
            raise LookupError(f"round {round_id} is gone")
        if round_.status in (RoundStatus.labeling, RoundStatus.complete):
            return Step.done, f"round {round_.number} is {round_.status.value}"
        ingesting = unfinished_ingest_jobs(session, round_.project_id)
        if ingesting:
            return Step.wait_for_ingest, f"ingest jobs {', '.join(map(str, ingesting[:5]))}"
        if not project_has_labels(session, round_.project_id):
            return Step.initial_query, "nothing labeled yet"
        if round_checkpoint(session, round_.id) is None:
            return Step.train, ""
        if round_.strategy in UNSCORED_STRATEGIES:
            return Step.query, ""
        if round_.status != RoundStatus.scoring:
            return Step.score, ""
        chunks = list(
            session.scalars(select(Job).where(Job.round_id == round_.id, Job.kind == "score"))
        )
        failed = [c for c in chunks if c.status in (JobStatus.failed, JobStatus.cancelled)]
        if failed:
            return Step.chunk_failed, (failed[0].error or "").split("\n")[0]
        if any(c.status in (JobStatus.queued, JobStatus.running) for c in chunks):
            return Step.wait_for_chunks, ""
        return Step.query, ""


def unfinished_ingest_jobs(session: Session, project_id: int) -> list[int]:
    """Ids of the project's ingest jobs still queued or running."""
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.project_id == project_id, Job.kind == INGEST_JOB)
            .where(Job.status.in_((JobStatus.queued, JobStatus.running)))
            .order_by(Job.id)
        )
    )


def wake_rounds_waiting_for_ingest(runtime: WorkerRuntime, project_id: int) -> None:
    """Sends the project's handed-off round jobs once no ingest job of it is unfinished.

    Called by each ingest job after its own commit, so the last one to end sees none; a
    round sent while it has nothing to do (it waits for scoring chunks) hands off again.
    """
    with runtime.session_factory() as session:
        if unfinished_ingest_jobs(session, project_id):
            return
        waiting = session.scalars(
            select(Job).where(
                Job.project_id == project_id,
                Job.kind == ROUND_JOB,
                Job.status == JobStatus.running,
                Job.worker.is_(None),
            )
        )
        for job in waiting:
            try:
                send_job(runtime.settings, job)
            except BrokerUnavailable:
                log.warning("round job %s not sent; the watchdog sends it", job.id)
        session.commit()


def _set_status(lease: JobLease, round_id: int, status: RoundStatus, message: str) -> None:
    with lease.runtime.session_factory() as session:
        lease.fence(session, message=message[:500])
        round_ = session.get(Round, round_id)
        assert round_ is not None
        round_.status = status
        session.commit()
    lease.report(lease.progress, message)


def _dispatch_scoring(lease: JobLease, round_id: int) -> bool:
    """Creates and sends the chunk jobs; False when there was nothing to score."""
    runtime = lease.runtime
    lease.stop()
    with runtime.session_factory() as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        chunk_ids, total = create_score_chunks(session, lease, round_)
        if not chunk_ids:
            session.rollback()
            return False
        parent = session.get(Job, lease.job_id)
        assert parent is not None
        parent.payload = {"score_images": total}
        round_.status = RoundStatus.scoring
        lease.hand_off(
            session,
            f"round {round_.number}: scoring {total} pool images in {len(chunk_ids)} chunks",
            SCORING_SPAN[0],
        )
        session.commit()
        for job_id in chunk_ids:
            job = session.get(Job, job_id)
            assert job is not None
            try:
                send_job(runtime.settings, job)
            except BrokerUnavailable:
                log.exception("chunk %s not sent; a watchdog re-sends it", job_id)
        session.commit()
    return True


def drive_round(lease: JobLease) -> None:
    """Advances the round of the claimed round job as far as this worker can take it."""
    with lease.runtime.session_factory() as session:
        job = session.get(Job, lease.job_id)
        if job is None or job.round_id is None:
            raise LookupError(f"round job {lease.job_id} has no round")
        round_id = job.round_id
        round_ = session.get(Round, round_id)
        number = round_.number if round_ else "?"
    while True:
        lease.check()
        step, detail = next_step(lease, round_id)
        log.info("round %s (job %s): %s %s", round_id, lease.job_id, step.value, detail)
        if step is Step.done:
            lease.stop()
            with lease.runtime.session_factory() as session:
                lease.finish(session, detail)
                session.commit()
            return
        if step is Step.wait_for_ingest:
            lease.stop()
            with lease.runtime.session_factory() as session:
                # Nobody holds it meanwhile: the last ingest job (or, failing that, the
                # watchdog once the lease lapses) sends it again.
                lease.hand_off(
                    session,
                    f"round {number}: waiting for superpixels and features ({detail})",
                    lease.progress,
                )
                session.commit()
            return
        if step is Step.initial_query:
            _set_status(lease, round_id, RoundStatus.querying, f"round {number}: random initial")
            write_round_queries(lease, round_id, initial=True)
            return
        if step is Step.train:
            _set_status(lease, round_id, RoundStatus.training, f"round {number}: training")
            train_round_model(lease, round_id, TRAINING_SPAN)
            continue
        if step is Step.score:
            if _dispatch_scoring(lease, round_id):
                return
            _set_status(lease, round_id, RoundStatus.querying, f"round {number}: querying")
            write_round_queries(lease, round_id, initial=False)
            return
        if step is Step.wait_for_chunks:
            lease.stop()
            with lease.runtime.session_factory() as session:
                lease.hand_off(session, f"round {number}: scoring", lease.progress)
                session.commit()
            return
        if step is Step.chunk_failed:
            raise RuntimeError(f"a scoring chunk failed: {detail}")
        _set_status(lease, round_id, RoundStatus.querying, f"round {number}: querying")
        write_round_queries(lease, round_id, initial=False)
        return
