"""Worker tests: a real ``tessera worker`` subprocess, a real broker (Redis or the embedded
file broker), a fresh PostgreSQL database or SQLite file per test, and the API in-process.

Hyper-parameters are tiny (width-4 U-Net, a few dozen iterations) so a round takes seconds
on two CPU cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from backend.app import create_app
from core.migrate import upgrade_database
from core.settings import Settings
from tests.backend.builders import World
from tests.services import postgres_database

REDIS_URL = "redis://127.0.0.1:6379/14"
TESSERA = Path(sys.executable).parent / "tessera"

# The worker's environment on top of the database and broker; tests may override.
TINY_WORKER = {
    "TESSERA_MODEL_WIDTH": "4",
    "TESSERA_MODEL_DEPTH": "2",
    "TESSERA_TRAIN_ITERATIONS": "40",
    "TESSERA_FINETUNE_ITERATIONS": "30",
    "TESSERA_TRAIN_BATCH_SIZE": "4",
    "TESSERA_LEARNING_RATE": "0.01",
    "TESSERA_SCORE_CHUNK_IMAGES": "4",
    "TESSERA_INGEST_CHUNK_IMAGES": "8",
    "TESSERA_JOB_LEASE_SECONDS": "4",
    "TESSERA_DEVICE": "cpu",
    "OMP_NUM_THREADS": "1",
}


@dataclass
class Stack:
    """One database and one broker, shared by the in-process API and worker processes."""

    settings: Settings
    log_dir: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        env.update(TINY_WORKER)
        env["TESSERA_DATABASE_URL"] = self.settings.resolved_database_url
        env["TESSERA_DATA_DIR"] = str(self.settings.data_dir)
        env["TESSERA_TASK_QUEUE"] = self.settings.task_queue
        env["TESSERA_SECRET_KEY"] = self.settings.secret_key
        if self.settings.broker_url:
            env["TESSERA_BROKER_URL"] = self.settings.broker_url
        env.update(overrides)
        return env

    def start_worker(self, **overrides: str) -> WorkerProcess:
        name = f"worker{len(self.workers) + 1}"
        process = WorkerProcess.start(self.env(**overrides), self.log_dir / f"{name}.log", name)
        self.workers.append(process)
        return process


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, env: dict[str, str], log_path: Path, name: str) -> WorkerProcess:
        log = log_path.open("wb")
        process = subprocess.Popen(
            [str(TESSERA), "worker", "--hostname", f"{name}-{uuid.uuid4().hex[:6]}@%h"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: kill() takes the pool processes down with it.
            start_new_session=True,
        )
        log.close()
        return cls(process, log_path)

    def kill(self) -> None:
        """SIGKILL to the whole worker (main and pool processes), as a lost machine."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown: SIGTERM to the main process only, which stops its pool (a SIGTERM
        to the whole group kills the pool process first and Celery replaces it)."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[[str, str], Stack]]:
    """make_stack(database, broker): database "sqlite" | "postgresql", broker "redis" |
    "embedded"; everything is removed (workers stopped) after the test."""
    databases = ExitStack()
    cleanups: list[Callable[[], None]] = [databases.close]  # runs last: after the workers
    stacks: list[Stack] = []

    def make(database: str, broker: str) -> Stack:
        data_dir = tmp_path / f"data-{len(stacks)}"
        if database == "sqlite":
            url = f"sqlite:///{data_dir / 'tessera.db'}"
        else:
            url = databases.enter_context(postgres_database("tessera_worker"))
        queue = f"tessera-worker-test-{uuid.uuid4().hex[:10]}"
        settings = Settings(
            database_url=url,
            data_dir=data_dir,
            secret_key="worker-tests",
            broker_url=REDIS_URL if broker == "redis" else None,
            task_queue=queue,
            job_lease_seconds=float(TINY_WORKER["TESSERA_JOB_LEASE_SECONDS"]),
            ingest_chunk_images=int(TINY_WORKER["TESSERA_INGEST_CHUNK_IMAGES"]),
        )
        upgrade_database(settings)
        if broker == "redis":
            client = redis.Redis.from_url(REDIS_URL)
            cleanups.append(lambda: (client.delete(queue), client.close()))
        stack = Stack(settings, tmp_path)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        for worker in stack.workers:
            worker.stop()
    for cleanup in reversed(cleanups):
        cleanup()


@dataclass
class Api:
    """The API in-process, called as the project's lead."""

    client: TestClient
    headers: dict[str, str]
    world: World

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(f"/api/v1{path}", headers=self.headers, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, expect: int = 202, **kwargs: Any) -> Any:
        response = self.client.post(f"/api/v1{path}", headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()


@pytest.fixture
def make_api() -> Iterator[Callable[[Stack], Api]]:
    apps = []

    def make(stack: Stack) -> Api:
        app = create_app(stack.settings)
        apps.append(app)
        world = World(app.state.session_factory, stack.settings)
        lead = world.user(f"lead-{uuid.uuid4().hex[:6]}@example.org")
        return Api(TestClient(app), lead.headers, world)

    yield make
    for app in apps:
        app.state.engine.dispose()


def wait_for(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    workers: list[WorkerProcess] | None = None,
    interval: float = 0.2,
) -> Any:
    """Polls ``check`` until it returns something truthy; fails with the workers' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    logs = "\n".join(f"--- {w.log_path.name}\n{w.log()[-4000:]}" for w in workers or [])
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{logs}")
