"""What a worker process needs to run tasks: settings, a database session factory and a
torch device, made once per process on first use (after Celery forks its pool processes,
so no connection or CUDA context is ever shared across a fork)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory
from core.settings import Settings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass
class WorkerRuntime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    pid: int = field(default_factory=os.getpid)

    @cached_property
    def device(self) -> torch.device:
        from worker.engine.model import resolve_device

        device = resolve_device(self.settings.device)
        log.info("worker process %s uses device %s", self.pid, describe_device(device))
        return device


def describe_device(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


_runtimes: dict[tuple[int, str], WorkerRuntime] = {}


def runtime_for(settings: Settings) -> WorkerRuntime:
    """This process's runtime for ``settings`` (a forked child makes its own)."""
    key = (os.getpid(), settings.model_dump_json())
    runtime = _runtimes.get(key)
    if runtime is None:
        engine = make_engine(settings.resolved_database_url)
        runtime = WorkerRuntime(settings, engine, make_session_factory(engine))
        _runtimes[key] = runtime
    return runtime


def new_holder_id() -> str:
    """Names one task execution in leases: host, process and a random suffix."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
