"""Handing work to the Celery worker, by task name, so the API never imports worker code.

The worker registers tasks under these names (``worker/celery_app.py``); the API only sends
ids of rows it has already committed (STYLE: enqueue after the commit, pass ids). Producer
and worker reach the broker through ``core.broker``, so both use the same transport.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from celery import Celery

from core.broker import broker_connection
from core.models import Job
from core.models.base import utc_now
from core.settings import Settings

RUN_ROUND_TASK: Final = "tessera.run_round"
INGEST_TASK: Final = "tessera.ingest"
ORACLE_TASK: Final = "tessera.oracle"
SCORE_TASK: Final = "tessera.score_chunk"

# Job kinds (``jobs.kind``) and the task that runs a job of that kind, given its id.
ROUND_JOB: Final = "round"
INGEST_JOB: Final = "ingest"
ORACLE_JOB: Final = "oracle"
SCORE_JOB: Final = "score"
TASK_OF_JOB: Final[dict[str, str]] = {
    ROUND_JOB: RUN_ROUND_TASK,
    INGEST_JOB: INGEST_TASK,
    ORACLE_JOB: ORACLE_TASK,
    SCORE_JOB: SCORE_TASK,
}


class BrokerUnavailable(Exception):
    """The broker refused or did not answer; the caller marks its job failed."""


@lru_cache(maxsize=4)
def _producer(broker_url: str, transport_options: tuple[tuple[str, Any], ...]) -> Celery:
    app = Celery("tessera-api", broker=broker_url, set_as_current=False)
    # Fail fast: an API request must not hang for minutes on a dead broker.
    app.conf.broker_connection_timeout = 3
    app.conf.broker_connection_retry = False
    # Without max_retries kombu's Redis transport retries a refused connection for ~6 s.
    app.conf.broker_transport_options = {
        "max_retries": 0,
        "socket_connect_timeout": 3,
        **dict(transport_options),
    }
    return app


def producer(settings: Settings) -> Celery:
    """A sending-only Celery app for the configured broker (cached per broker)."""
    connection = broker_connection(settings)
    return _producer(connection.url, tuple(sorted(connection.transport_options.items())))


def enqueue(settings: Settings, task_name: str, job_id: int, *, queue: str | None = None) -> str:
    """Sends ``task_name(job_id)`` to ``queue`` (default ``settings.task_queue``); returns the
    Celery task id."""
    try:
        result = producer(settings).send_task(
            task_name, args=[job_id], queue=queue or settings.task_queue, retry=False
        )
    except Exception as error:  # kombu raises several transport-specific errors
        raise BrokerUnavailable(f"{type(error).__name__}: {error}") from error
    return str(result.id)


def send_job(settings: Settings, job: Job) -> None:
    """Sends the task of ``job`` (committed) and records the Celery id and dispatch time;
    the caller commits. Raises BrokerUnavailable."""
    queue = settings.resolved_ingest_queue if job.kind == INGEST_JOB else settings.task_queue
    job.celery_task_id = enqueue(settings, TASK_OF_JOB[job.kind], job.id, queue=queue)
    job.dispatched_at = utc_now()
