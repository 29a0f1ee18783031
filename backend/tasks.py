"""Handing work to the Celery worker, by task name, so the API never imports worker code.

The worker registers tasks under these names (``worker/`` issue); the API only sends ids
of rows it has already committed (STYLE: enqueue after the commit, pass ids).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from celery import Celery

from backend.settings import Settings

RUN_ROUND_TASK: Final = "tessera.run_round"


class BrokerUnavailable(Exception):
    """The broker refused or did not answer; the caller marks its job failed."""


@lru_cache(maxsize=4)
def _producer(broker_url: str) -> Celery:
    app = Celery("tessera-api", broker=broker_url, set_as_current=False)
    # Fail fast: an API request must not hang for minutes on a dead broker.
    app.conf.broker_connection_timeout = 3
    app.conf.broker_connection_retry = False
    # Without this kombu's Redis transport retries a refused connection for ~6 s.
    app.conf.broker_transport_options = {"max_retries": 0, "socket_connect_timeout": 3}
    return app


def enqueue(settings: Settings, task_name: str, job_id: int) -> str:
    """Sends ``task_name(job_id)`` to ``settings.task_queue``; returns the Celery task id."""
    try:
        result = _producer(settings.broker_url).send_task(
            task_name, args=[job_id], queue=settings.task_queue, retry=False
        )
    except Exception as error:  # kombu raises several transport-specific errors
        raise BrokerUnavailable(f"{type(error).__name__}: {error}") from error
    return str(result.id)
