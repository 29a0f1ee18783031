"""Running one job: claim it, keep its lease alive, record a failure with its error."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from core.logs import job_id as job_id_var
from worker.jobs import ClaimOutcome, JobLease, LeaseLost, claim_job, error_text, fail_job
from worker.runtime import WorkerRuntime, new_holder_id

log = logging.getLogger(__name__)

Step = Callable[[JobLease], None]


def is_database_outage(error: BaseException) -> bool:
    """A lost or refused PostgreSQL connection (a restart, a failover, a network cut), as
    opposed to an error of the job itself, which fails it with its text (SQLite's errors,
    "database is locked" included, stay such errors)."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    original = error.orig
    if not isinstance(error, OperationalError | InterfaceError) or original is None:
        return False
    if not type(original).__module__.startswith("psycopg"):
        return False
    # No SQLSTATE: the connection itself failed (refused, closed); class 08: connection
    # exception; 57P01-57P03: the server is shutting down, crashed or not yet accepting.
    sqlstate = getattr(original, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")


def run_job(
    runtime: WorkerRuntime,
    job_id: int,
    step: Step,
    *,
    after_failure: Callable[[], None] | None = None,
) -> None:
    """Runs ``step`` under a fresh lease on job ``job_id`` if it can be claimed.

    A job already finished, or held by a live worker, is left alone (a duplicate message).
    A step that loses its lease stops without writing; any other error fails the job with
    the error text, which the API shows and the lead can retry.
    """
    token = job_id_var.set(job_id)  # every log line of this job carries its id
    try:
        _run_claimed(runtime, job_id, step, after_failure)
    finally:
        job_id_var.reset(token)


def _run_claimed(
    runtime: WorkerRuntime, job_id: int, step: Step, after_failure: Callable[[], None] | None
) -> None:
    holder = new_holder_id()
    with runtime.session_factory() as session:
        outcome = claim_job(session, job_id, holder, runtime.settings.job_lease_seconds)
    if outcome is not ClaimOutcome.claimed:
        log.info("job %s not run here: %s", job_id, outcome.value)
        return
    log.info("job %s started by %s", job_id, holder)
    started = time.perf_counter()
    lease = JobLease(runtime, job_id, holder)
    try:
        with lease:
            step(lease)
        log.info("job %s ran for %.1f s", job_id, time.perf_counter() - started)
    except LeaseLost:
        log.warning("job %s was taken over by another worker; this run stops", job_id)
    except Exception as error:
        if is_database_outage(error):
            # Not the job's fault, and its failure could not be written anyway: the lease
            # lapses and a watchdog sends the job again once the database answers (each such
            # loss counts towards TESSERA_JOB_MAX_ATTEMPTS, so an outage cannot loop forever).
            log.warning("job %s lost the database (%s); left for the watchdog", job_id, error)
            return
        log.exception("job %s failed", job_id)
        if fail_job(runtime, job_id, holder, error_text(error)) and after_failure is not None:
            after_failure()
