"""The Celery app, made by ``create_celery_app(settings)``; importing this module does nothing.

Tasks are registered by name (``backend.tasks``) and take one job id. Results and progress
go to the job rows in the database, never to a Celery result backend. Messages are
acknowledged after the task ends (``acks_late``) and put back when a pool process dies
(``reject_on_worker_lost``); what a killed *worker* held is recovered by the watchdog
(``worker/watchdog.py``), which this app runs in every worker every ``lease/2`` seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from celery import Celery, bootsteps

from backend.broker import broker_connection
from backend.settings import Settings, get_settings
from backend.tasks import INGEST_TASK, ORACLE_TASK, RUN_ROUND_TASK, SCORE_TASK
from worker.jobs import JobLease
from worker.runtime import runtime_for
from worker.tasks.common import run_job
from worker.tasks.ingest import ingest_images
from worker.tasks.oracle import oracle_job
from worker.tasks.rounds import drive_round
from worker.tasks.score import score_chunk, wake_round_if_last_chunk
from worker.watchdog import check_jobs

log = logging.getLogger(__name__)


def _register_tasks(app: Celery, settings: Settings) -> None:
    def job_task(name: str, step: Callable[[JobLease], None], *, wakes_round: bool = False) -> None:
        def task(job_id: int) -> None:
            runtime = runtime_for(settings)
            after: Callable[[], None] | None = None
            if wakes_round:

                def after() -> None:
                    wake_round_if_last_chunk(runtime, job_id)

            run_job(runtime, job_id, step, after_failure=after)
            if wakes_round:
                wake_round_if_last_chunk(runtime, job_id)

        task.__name__ = task.__qualname__ = name.replace(".", "_")
        app.task(name=name, ignore_result=True)(task)

    job_task(RUN_ROUND_TASK, drive_round)
    job_task(SCORE_TASK, score_chunk, wakes_round=True)
    job_task(INGEST_TASK, ingest_images)
    job_task(ORACLE_TASK, oracle_job)


def _watchdog_step(settings: Settings) -> type:
    interval = max(settings.job_lease_seconds / 2.0, 0.5)

    class Watchdog(bootsteps.StartStopStep):  # type: ignore[misc]
        """Runs ``check_jobs`` at start and then every ``lease/2`` s on the worker's timer."""

        requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            super().__init__(worker, **kwargs)
            self.timer_entry: Any = None

        def start(self, worker: Any) -> None:
            runtime = runtime_for(settings)
            check_jobs(runtime)
            self.timer_entry = worker.timer.call_repeatedly(interval, check_jobs, (runtime,))

        def stop(self, worker: Any) -> None:
            if self.timer_entry is not None:
                self.timer_entry.cancel()

    return Watchdog


def create_celery_app(settings: Settings | None = None) -> Celery:
    """A Celery app for ``settings`` (default: the process's settings) with Tessera's tasks."""
    settings = settings or get_settings()
    connection = broker_connection(settings)
    app = Celery("tessera", broker=connection.url, set_as_current=False)
    transport_options = dict(connection.transport_options)
    if not connection.embedded:
        # Redis re-delivers an unacknowledged message after this long; the watchdog recovers
        # lost jobs long before, so keep it above the longest training to avoid duplicates.
        transport_options.setdefault("visibility_timeout", 12 * 3600)
    app.conf.update(
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.task_queue,
        task_routes={INGEST_TASK: {"queue": settings.resolved_ingest_queue}},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        # A message leaves the broker only once its task has ended; a pool process that
        # dies mid-task puts it back. Both are safe because every task is idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message per pool process at a time: a long training never sits on a queued
        # job that another worker could run.
        worker_prefetch_multiplier=1,
        # The embedded (file) broker has no broadcast; remote control needs Redis.
        worker_enable_remote_control=not connection.embedded,
        worker_hijack_root_logger=False,
    )
    _register_tasks(app, settings)
    app.steps["worker"].add(_watchdog_step(settings))
    return app
