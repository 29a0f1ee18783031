"""The Celery app, made by ``create_celery_app(settings)``; importing this module does nothing.

Tasks are registered by name (``core.dispatch``) and take one job id. Results and progress
go to the job rows in the database, never to a Celery result backend. Messages are
acknowledged after the task ends (``acks_late``) and put back when a pool process dies
(``reject_on_worker_lost``); what a killed *worker* held is recovered by the watchdog
(``worker/watchdog.py``), which this app runs in every worker every ``lease/2`` seconds.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from celery import Celery, Task, bootsteps, signals
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

from core.broker import broker_connection
from core.dispatch import INGEST_TASK, ORACLE_TASK, RUN_ROUND_TASK, SCORE_TASK
from core.settings import Settings, get_settings
from worker.jobs import JobLease, fail_job
from worker.runtime import runtime_for
from worker.tasks.common import run_job
from worker.tasks.ingest import ingest_images
from worker.tasks.oracle import oracle_job
from worker.tasks.rounds import drive_round
from worker.tasks.score import score_chunk, wake_round_if_last_chunk
from worker.watchdog import check_jobs

log = logging.getLogger(__name__)


# After the soft limit the job gets this long to fail cleanly before its process is killed.
HARD_LIMIT_GRACE_SECONDS = 30.0


class JobBudgetExceeded(RuntimeError):
    """A job ran past its time budget or out of its memory budget; the job fails with this
    message (the queue moves on) and the lead may retry it or raise the budget."""


@dataclass(frozen=True)
class Budget:
    """One task kind's limits, named as the settings that set them."""

    kind: str
    seconds: float
    time_setting: str

    def over_time(self, job_id: int) -> str:
        return (
            f"{self.kind} job {job_id} ran past its time budget of {self.seconds:g} s "
            f"({self.time_setting}) and was stopped"
        )


def _within_budget(
    step: Callable[[JobLease], None], budget: Budget, settings: Settings
) -> Callable[[JobLease], None]:
    """``step`` with the pool process's time and memory limits turned into clear errors."""

    def bounded(lease: JobLease) -> None:
        try:
            step(lease)
        except SoftTimeLimitExceeded as error:
            raise JobBudgetExceeded(budget.over_time(lease.job_id)) from error
        except MemoryError as error:
            if settings.worker_memory_limit_mb is None:
                raise  # the machine's memory, not a budget: the error says what it is
            raise JobBudgetExceeded(
                f"{budget.kind} job {lease.job_id} ran out of its memory budget of "
                f"{settings.worker_memory_limit_mb} MB (TESSERA_WORKER_MEMORY_LIMIT_MB) and "
                "was stopped"
            ) from error

    return bounded


def _register_tasks(app: Celery, settings: Settings) -> None:
    def job_task(
        name: str, step: Callable[[JobLease], None], budget: Budget, *, wakes_round: bool = False
    ) -> None:
        bounded = _within_budget(step, budget, settings)

        def after_failure(job_id: int) -> None:
            if wakes_round:
                wake_round_if_last_chunk(runtime_for(settings), job_id)

        def task(job_id: int) -> None:
            runtime = runtime_for(settings)
            run_job(runtime, job_id, bounded, after_failure=lambda: after_failure(job_id))
            if wakes_round:
                wake_round_if_last_chunk(runtime, job_id)

        def on_failure(
            self: Task, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
        ) -> None:
            # Celery's main process calls this when it kills a pool process at the hard
            # limit (the soft limit did not stop the job, e.g. inside a long C call).
            if isinstance(exc, TimeLimitExceeded) and args:
                job_id = int(args[0])
                error = f"{JobBudgetExceeded.__name__}: {budget.over_time(job_id)} (killed)"
                if fail_job(runtime_for(settings), job_id, None, error):
                    after_failure(job_id)

        task.__name__ = task.__qualname__ = name.replace(".", "_")
        # shared=False: a shared task would join every Celery app made later in this
        # process, and the first app's budgets would win over the later app's own.
        app.task(
            name=name,
            shared=False,
            ignore_result=True,
            soft_time_limit=budget.seconds,
            time_limit=budget.seconds + HARD_LIMIT_GRACE_SECONDS,
            on_failure=on_failure,
        )(task)

    job_task(
        RUN_ROUND_TASK,
        drive_round,
        Budget("round", settings.round_time_limit_seconds, "TESSERA_ROUND_TIME_LIMIT_SECONDS"),
    )
    job_task(
        SCORE_TASK,
        score_chunk,
        Budget("scoring", settings.score_time_limit_seconds, "TESSERA_SCORE_TIME_LIMIT_SECONDS"),
        wakes_round=True,
    )
    job_task(
        INGEST_TASK,
        ingest_images,
        Budget("ingest", settings.ingest_time_limit_seconds, "TESSERA_INGEST_TIME_LIMIT_SECONDS"),
    )
    job_task(
        ORACLE_TASK,
        oracle_job,
        Budget("oracle", settings.oracle_time_limit_seconds, "TESSERA_ORACLE_TIME_LIMIT_SECONDS"),
    )


def _cap_pool_memory(settings: Settings) -> None:
    """Caps the heap (RLIMIT_DATA: brk and private writable mappings, where numpy and torch
    allocate on the CPU) of every pool process, so a job over its memory budget meets a
    MemoryError and fails instead of driving the machine into swap."""
    if settings.worker_memory_limit_mb is None:
        return
    limit = settings.worker_memory_limit_mb * 1024 * 1024

    def cap(**_: Any) -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    signals.worker_process_init.connect(cap, weak=False)


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
    _cap_pool_memory(settings)
    app.steps["worker"].add(_watchdog_step(settings))
    return app
