"""Worker fault bench: SIGKILLs and service restarts at random points of real rounds.

Against a generated project (48x64 scenes, width-4 U-Net, a round takes seconds) on its own
PostgreSQL cluster and its own Redis (the machine's shared ones serve colleagues' tests and
CI, so this bench never restarts them), with real ``tessera worker`` processes:

- ``--kills`` SIGKILLs, each of a worker's main process or of one of its pool processes,
  preferably the one holding the round's running job, at a random moment of a round
  (training, scoring chunks, querying). A killed main process is started again, as a
  supervisor would; Celery replaces a killed pool process itself.
- one Redis restart (``SHUTDOWN NOSAVE``: queued messages are lost, as on the shared Redis,
  which keeps nothing on disk) and one PostgreSQL restart (``pg_ctl restart -m immediate``),
  each at a random moment of a round.

Checked: every round reaches ``labeling`` (the round completes), 0 stuck jobs (every job of
the project succeeded at the end), 0 labels changed by the worker (hash of every stored mask
before each round and when it reached labeling), 0 orphan processes (the pool processes of a
killed main process are gone within 5 s, and every process seen is gone after the workers'
warm shutdown). Printed: each fault with its recovery time (from the fault until a live
worker renews a lease of the round, or the round reaches labeling), totals, and each round's
time against the fault-free round measured first in the same run.

    .venv/bin/python bench/worker_faults.py              # 22 kills + 2 restarts, ~5 min
    .venv/bin/python bench/worker_faults.py --kills 3    # a quick look

``TESSERA_JOB_MAX_ATTEMPTS`` is raised to 1000 here: a job whose worker is lost three times
otherwise fails on purpose (visibly, retryable), and this bench kills the same job's worker
more often than that.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from backend.app import create_app
from backend.auth.service import create_user, issue_token
from core.db import make_engine, make_session_factory
from core.migrate import upgrade_database
from core.models import Annotation, Job, JobStatus, Round, TokenKind
from core.models.base import utc_now
from core.settings import Settings
from worker.simulation.synthetic import CLASSES, generate_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests
from tests.services import free_port
from tests.worker.processes import (
    Proc,
    identify,
    is_alive,
    living_children,
    still_running,
)

T = TypeVar("T")
TESSERA = Path(sys.executable).with_name("tessera")
PG_BIN = Path("/usr/lib/postgresql")
WORKER_ENV = {
    "TESSERA_MODEL_WIDTH": "4",
    "TESSERA_MODEL_DEPTH": "2",
    "TESSERA_TRAIN_ITERATIONS": "150",
    "TESSERA_FINETUNE_ITERATIONS": "120",
    "TESSERA_TRAIN_BATCH_SIZE": "4",
    "TESSERA_LEARNING_RATE": "0.01",
    "TESSERA_SCORE_CHUNK_IMAGES": "4",
    "TESSERA_INGEST_CHUNK_IMAGES": "8",
    "TESSERA_JOB_MAX_ATTEMPTS": "1000",
    "TESSERA_DEVICE": "cpu",
    "OMP_NUM_THREADS": "1",
}
ORPHAN_GRACE_SECONDS = 5.0
ROUND_TIMEOUT_SECONDS = 300.0


def png(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Processes, read from /proc


def describe(proc: Proc) -> str:
    try:
        command = Path(f"/proc/{proc[0]}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        command = b"?"
    return f"{proc[0]} {command.decode(errors='replace')[:80]}"


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# The bench's own services


class OwnPostgres:
    """A throw-away PostgreSQL cluster (initdb) on a free port; run as ``postgres`` when this
    runs as root (initdb refuses root)."""

    def __init__(self, root: Path) -> None:
        versions = sorted(PG_BIN.glob("*/bin/pg_ctl"))
        if not versions:
            raise SystemExit("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = versions[-1].parent
        self.dir = root / "pgdata"
        self.port = free_port()
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        root.chmod(0o755)
        self.dir.mkdir()
        if self.as_owner:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "bench")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/bench"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.as_owner, str(self.bin / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.dir.parent,
        )

    def _ctl(self, action: str, *args: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        log = self.dir / "server.log"
        self._run("pg_ctl", action, "-D", str(self.dir), "-l", str(log), "-o", options, "-w", *args)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart", "-m", "immediate")

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", str(self.dir), "-m", "immediate", "-w")


class OwnRedis:
    """A redis-server on a free port that keeps nothing on disk, like the shared one."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._answers():
            if time.monotonic() > deadline:
                raise RuntimeError("own redis-server did not start")
            time.sleep(0.05)

    def _answers(self) -> bool:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
        )
        return done.stdout.strip() == "PONG"

    def restart(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], check=False)
        assert self.process is not None
        self.process.wait(10)
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


# ---------------------------------------------------------------------------------------------
# Workers


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    proc: Proc

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Workers:
    """``tessera worker`` processes; remembers every pool process it ever saw."""

    env: dict[str, str]
    log_dir: Path
    concurrency: int
    live: list[Worker] = field(default_factory=list)
    seen: dict[Proc, set[Proc]] = field(default_factory=dict)  # main -> its pool processes
    started: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Worker:
        self.started += 1
        name = f"w{self.started}"
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [str(TESSERA), "worker", "-c", str(self.concurrency), "-n", f"{name}@%h"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        worker = Worker(name, process, identify(process.pid) or (process.pid, -1))
        with self._lock:
            self.live.append(worker)
            self.seen[worker.proc] = set()
        return worker

    def watch(self) -> None:
        """Records pool processes (call often: a replaced one is seen too)."""
        with self._lock:
            for worker in self.live:
                children = (identify(pid) for pid in living_children(worker.pid))
                self.seen[worker.proc].update(proc for proc in children if proc is not None)

    def pool_of(self, worker: Worker) -> list[int]:
        return living_children(worker.pid)

    def owner_of(self, pid: int) -> Worker | None:
        for worker in self.live:
            if worker.pid == pid or parent_of(pid) == worker.pid:
                return worker
        return None

    def forget(self, worker: Worker) -> None:
        with self._lock:
            self.live.remove(worker)

    def stop_all(self) -> None:
        for worker in list(self.live):
            worker.process.terminate()  # warm shutdown: the main process stops its pool
        for worker in list(self.live):
            try:
                worker.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.process.wait(10)
        self.live.clear()

    def all_seen(self) -> set[Proc]:
        return set(self.seen) | {proc for pool in self.seen.values() for proc in pool}


# ---------------------------------------------------------------------------------------------
# The run


@dataclass
class Fault:
    number: int
    kind: str  # kill-main | kill-pool | redis-restart | postgres-restart
    round_number: int
    moment: str  # the round's status / job message when it happened
    target: str = ""
    recovery_s: float = float("nan")
    jobs_hit: int = 0
    orphans: int = 0


class ServerError(Exception):
    """The API answered 5xx (the database was restarting)."""


def retrying(action: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    """Runs ``action`` until it stops raising database or HTTP 5xx errors (a restart)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except (DBAPIError, ServerError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Lead:
    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        def once() -> Any:
            response = self.client.request(method, f"/api/v1{path}", headers=self.headers, **kwargs)
            if response.status_code >= 500:
                raise ServerError(f"{method} {path}: {response.status_code} {response.text}")
            if response.status_code != expect:
                raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
            return response.json()

        return retrying(once, f"{method} {path}")


def fingerprints(factory: sessionmaker[Session]) -> dict[int, tuple[int, str]]:
    def read() -> dict[int, tuple[int, str]]:
        with factory() as session:
            rows = session.execute(
                select(Annotation.image_id, Annotation.version, Annotation.mask_png)
            ).all()
        return {i: (v, hashlib.sha256(png_ or b"").hexdigest()) for i, v, png_ in rows}

    return retrying(read, "fingerprints")


def holder_pid(worker: str | None) -> int | None:
    """The pool process in a lease holder id ``host/pid/suffix``."""
    if not worker:
        return None
    try:
        return int(worker.split("/")[1])
    except (IndexError, ValueError):
        return None


@dataclass
class Held:
    job_id: int
    pid: int
    heartbeat_at: datetime | None


@dataclass
class RoundState:
    status: str
    held: list[Held]  # the round's running jobs that a process holds
    queued: set[int]  # ids of its jobs waiting for a worker
    finished: set[int]  # ids of its succeeded jobs
    present: set[int]  # ids of all its jobs (unfinished scoring chunks are replaced)
    message: str


def round_state(factory: sessionmaker[Session], round_id: int) -> RoundState:
    def read() -> RoundState:
        with factory() as session:
            round_ = session.get(Round, round_id)
            assert round_ is not None
            jobs = list(session.scalars(select(Job).where(Job.round_id == round_id)))
        held = []
        message = ""
        for job in jobs:
            pid = holder_pid(job.worker)
            if job.status == JobStatus.running and pid is not None:
                held.append(Held(job.id, pid, job.heartbeat_at))
                message = message or job.message
        queued = {job.id for job in jobs if job.status == JobStatus.queued}
        finished = {job.id for job in jobs if job.status == JobStatus.succeeded}
        present = {job.id for job in jobs}
        return RoundState(round_.status.value, held, queued, finished, present, message)

    return retrying(read, "round state")


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.root = root
        self.postgres = OwnPostgres(root)
        self.redis = OwnRedis(root)
        self.settings = Settings(
            database_url=self.postgres.url,
            broker_url=self.redis.url,
            data_dir=root / "data",
            secret_key="worker-faults",
            task_queue=f"faults-{uuid.uuid4().hex[:8]}",
            job_lease_seconds=args.lease,
        )
        upgrade_database(self.settings)
        self.app = create_app(self.settings)
        self.engine = make_engine(self.settings.resolved_database_url)
        self.factory = make_session_factory(self.engine)
        with self.factory() as session:
            user = create_user(
                session, "lead@bench.invalid", secrets.token_urlsafe(24), is_admin=True
            )
            _, secret = issue_token(session, user, TokenKind.api, key=self.settings.secret_key)
            session.commit()
        self.lead = Lead(
            TestClient(self.app, raise_server_exceptions=False),
            {"Authorization": f"Bearer {secret}"},
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        env.update(WORKER_ENV)
        env.update(
            TESSERA_DATABASE_URL=self.settings.resolved_database_url,
            TESSERA_BROKER_URL=self.redis.url,
            TESSERA_DATA_DIR=str(self.settings.data_dir),
            TESSERA_TASK_QUEUE=self.settings.task_queue,
            TESSERA_SECRET_KEY=self.settings.secret_key,
            TESSERA_JOB_LEASE_SECONDS=str(args.lease),
        )
        self.workers = Workers(env, root, args.concurrency)
        self.faults: list[Fault] = []
        self.round_seconds: list[tuple[int, int, float]] = []  # (round, faults, seconds)
        self.labels_changed = 0
        self.rounds_incomplete = 0
        self.project = 0
        # Faults land uniformly within this many seconds of the round's start or the last
        # fault's recovery: 0.7 x the fault-free round's time, once measured.
        self.fault_window = 3.0

    # -- setup ------------------------------------------------------------------------------

    def create_project(self) -> None:
        colours = ["#" + "".join(f"{int(v):02x}" for v in c["color"]) for c in CLASSES]  # type: ignore[attr-defined]
        body = {
            "name": "faults",
            "classes": [
                {"name": c["name"], "colour": colour}
                for c, colour in zip(CLASSES, colours, strict=True)
            ],
            "superpixel_size": 8,
            "mc_samples": 4,
            "initial_images": 4,
            "images_per_round": 4,
            "model_architecture": "unet",
        }
        self.project = self.lead.call("POST", "/projects", 201, json=body)["id"]
        scenes = np.random.default_rng(self.args.seed)
        for split, count in (("pool", self.args.pool), ("validation", 4)):
            pairs = [generate_scene(48, 64, scenes) for _ in range(count)]
            files = [
                ("files", (f"{split}{i}.png", png(image))) for i, (image, _) in enumerate(pairs)
            ]
            created = self.lead.call(
                "POST", f"/projects/{self.project}/images", 201, files=files, data={"split": split}
            )["created"]
            for image, (_, mask) in zip(created, pairs, strict=True):
                self.lead.call(
                    "PUT",
                    f"/projects/{self.project}/images/{image['id']}/ground-truth",
                    200,
                    files={"file": ("truth.png", png(mask))},
                )

    def wait_jobs_done(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = self.lead.call("GET", f"/projects/{self.project}/jobs", 200)
            if all(job["status"] == "succeeded" for job in jobs):
                return
            failed = [job for job in jobs if job["status"] in ("failed", "cancelled")]
            if failed:
                raise RuntimeError(f"job failed: {failed[0]['error']}")
            self.workers.watch()
            time.sleep(0.2)
        raise RuntimeError("jobs did not finish")

    # -- rounds -----------------------------------------------------------------------------

    def run_round(self, planned: list[str]) -> int:
        """Starts a round, injects the ``planned`` faults ("kill", "redis", "postgres") at
        random moments while it runs, lets the oracle answer it and closes it; returns how
        many faults it placed before the round reached labeling."""
        before = fingerprints(self.factory)
        started = self.lead.call("POST", f"/projects/{self.project}/rounds", 202)
        round_id, number = started["round"]["id"], started["round"]["number"]
        clock = time.monotonic()
        injected = 0
        for kind in planned:
            if not self.sleep_while_running(round_id, self.rng.uniform(0.2, self.fault_window)):
                break  # the round finished before this fault: the next round gets it
            self.inject(kind, round_id, number)
            injected += 1
        reached = self.wait_round(round_id, ROUND_TIMEOUT_SECONDS)
        seconds = time.monotonic() - clock
        self.round_seconds.append((number, injected, seconds))
        if not reached:
            self.rounds_incomplete += 1
            raise RuntimeError(f"round {number} did not reach labeling in {seconds:.0f} s")
        if fingerprints(self.factory) != before:
            self.labels_changed += 1
        if round_state(self.factory, round_id).status == "complete":
            raise RuntimeError(f"round {number} found nothing to ask: give --pool more images")
        oracle = self.lead.call(
            "POST", f"/projects/{self.project}/rounds/{round_id}/oracle", 202, json={}
        )
        self.wait_job(oracle["id"])
        self.lead.call("POST", f"/projects/{self.project}/rounds/{round_id}/close", 200)
        return injected

    def wait_job(self, job_id: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.lead.call("GET", f"/projects/{self.project}/jobs/{job_id}", 200)
            if job["status"] == "succeeded":
                return
            if job["status"] in ("failed", "cancelled"):
                raise RuntimeError(f"job {job_id} failed: {job['error']}")
            time.sleep(0.2)
        raise RuntimeError(f"job {job_id} did not finish")

    def sleep_while_running(self, round_id: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.workers.watch()
            if round_state(self.factory, round_id).status in ("labeling", "complete"):
                return False
            time.sleep(0.05)
        return round_state(self.factory, round_id).status not in ("labeling", "complete")

    def wait_round(self, round_id: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.workers.watch()
            status = round_state(self.factory, round_id).status
            if status in ("labeling", "complete"):
                return True
            if status == "failed":
                return False
            time.sleep(0.1)
        return False

    # -- faults -----------------------------------------------------------------------------

    def inject(self, kind: str, round_id: int, number: int) -> None:
        state = round_state(self.factory, round_id)
        fault = Fault(len(self.faults) + 1, kind, number, f"{state.status}: {state.message}"[:48])
        at, clock = utc_now(), time.monotonic()
        killed: set[int] = set()
        orphans_of: list[Proc] = []
        if kind == "kill":
            pid, main = self.pick_target(state)
            self.workers.watch()
            if main:
                worker = self.workers.owner_of(pid)
                assert worker is not None
                orphans_of = sorted(self.workers.seen[worker.proc])
                fault.kind, fault.target = "kill-main", f"{worker.name} ({pid})"
                os.kill(pid, signal.SIGKILL)
                worker.process.wait(10)
                self.workers.forget(worker)
                killed = {pid, *(proc[0] for proc in orphans_of)}
            else:
                owner = self.workers.owner_of(pid)
                fault.kind = "kill-pool"
                fault.target = f"{owner.name if owner else '?'} pool ({pid})"
                os.kill(pid, signal.SIGKILL)
                killed = {pid}
        elif kind == "redis":
            fault.kind, fault.target = "redis-restart", f"port {self.redis.port}"
            self.redis.restart()
        else:
            fault.kind, fault.target = "postgres-restart", f"port {self.postgres.port}"
            self.postgres.restart()
        self.faults.append(fault)
        if orphans_of:
            deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
            while any(map(still_running, orphans_of)) and time.monotonic() < deadline:
                time.sleep(0.05)
            fault.orphans = sum(map(still_running, orphans_of))
            time.sleep(self.rng.uniform(0.0, 1.0))
            self.workers.start()  # as systemd's Restart=always would
        # The jobs the fault took from their process; a restart hits every held job and
        # every queued one (Redis loses their messages).
        hit = {h.job_id for h in state.held if not killed or h.pid in killed}
        if not killed:
            hit |= state.queued
        fault.jobs_hit = len(hit)
        fault.recovery_s = self.recovery(round_id, hit, at, clock, killed)
        print(
            f"  fault {fault.number:2d} round {number:2d} {fault.kind:16s} "
            f"{fault.target:22s} during {fault.moment!r:50s} {fault.jobs_hit} job(s) hit, "
            f"recovered in {fault.recovery_s:5.1f} s"
            + (f"  ORPHANS {fault.orphans}" if fault.orphans else ""),
            flush=True,
        )

    def pick_target(self, state: RoundState) -> tuple[int, bool]:
        """(pid, is a main process): the holder of a running job of the round when there is
        one, else any worker process; its pool process or its main process at random."""
        main = self.rng.random() < 0.5
        live_holders = [held.pid for held in state.held if is_alive(held.pid)]
        if live_holders:
            pid = self.rng.choice(live_holders)
            owner = self.workers.owner_of(pid)
            if owner is not None:
                return (owner.pid, True) if main else (pid, False)
        worker = self.rng.choice(self.workers.live)
        pool = self.workers.pool_of(worker)
        if main or not pool:
            return worker.pid, True
        return self.rng.choice(pool), False

    def recovery(
        self, round_id: int, hit: set[int], since: datetime, clock: float, killed: set[int]
    ) -> float:
        """Seconds from the fault (``since``, ``clock``) until every job it ``hit`` has
        succeeded or is held by a live process that renewed its lease after the fault (0
        when it hit no job: an idle process)."""
        while hit and time.monotonic() - clock < ROUND_TIMEOUT_SECONDS:
            self.workers.watch()
            state = round_state(self.factory, round_id)
            if state.status in ("labeling", "complete", "failed"):
                break
            renewed = {
                held.job_id
                for held in state.held
                if held.pid not in killed
                and is_alive(held.pid)
                and held.heartbeat_at is not None
                and held.heartbeat_at > since
            }
            if hit & state.present <= renewed | state.finished:  # a deleted job: replaced
                break
            time.sleep(0.05)
        return time.monotonic() - clock if hit else 0.0

    # -- checks -----------------------------------------------------------------------------

    def stuck_jobs(self) -> list[str]:
        def read() -> list[str]:
            with self.factory() as session:
                jobs = session.scalars(select(Job).where(Job.status != JobStatus.succeeded))
                return [f"job {j.id} ({j.kind}) {j.status.value}: {j.message}" for j in jobs]

        return retrying(read, "stuck jobs")


def run(args: argparse.Namespace, root: Path) -> int:
    bench = Bench(args, root)
    try:
        bench.create_project()
        for _ in range(args.workers):
            bench.workers.start()
        clock = time.monotonic()
        bench.wait_jobs_done()
        print(f"ingest: {time.monotonic() - clock:.1f} s; round 1 (random, no training)")
        bench.run_round([])
        print("round 2: fault-free baseline", flush=True)
        bench.run_round([])
        bench.fault_window = 0.7 * bench.round_seconds[-1][2]
        todo = ["kill"] * args.kills + ["redis", "postgres"]
        bench.rng.shuffle(todo)
        while todo:
            if len(bench.round_seconds) >= args.max_rounds:
                raise RuntimeError("too many rounds without placing every fault")
            planned = todo[: args.faults_per_round]
            placed = bench.run_round(planned)
            todo = planned[placed:] + todo[len(planned) :]
        bench.workers.stop_all()
        time.sleep(1.0)
        leftovers = sorted(p for p in bench.workers.all_seen() if still_running(p))
        return report(bench, leftovers)
    finally:
        bench.workers.stop_all()
        bench.engine.dispose()
        bench.app.state.engine.dispose()
        bench.redis.stop()
        bench.postgres.stop()


def report(bench: Bench, leftovers: list[Proc]) -> int:
    faults = bench.faults
    kills = [f for f in faults if f.kind.startswith("kill")]
    stuck = bench.stuck_jobs()
    orphans = sum(f.orphans for f in faults) + len(leftovers)
    baseline = bench.round_seconds[1][2]
    print("\nround  faults  seconds  x fault-free round 2")
    for number, injected, seconds in bench.round_seconds:
        print(f"{number:5d}  {injected:6d}  {seconds:7.1f}  {seconds / baseline:6.2f}")
    hitting = [f for f in faults if f.jobs_hit]
    recoveries = [f.recovery_s for f in hitting] or [0.0]
    by_kind: dict[str, list[float]] = {}
    for fault in hitting:
        by_kind.setdefault(fault.kind, []).append(fault.recovery_s)
    print("\nrecovery (s), faults that hit a job   count   median    max")
    for kind, values in sorted(by_kind.items()):
        print(f"{kind:37s} {len(values):5d}  {statistics.median(values):7.1f}  {max(values):6.1f}")
    print(
        f"\nlease {bench.args.lease:.0f} s, {bench.args.workers} workers x "
        f"{bench.args.concurrency} pool processes; {len(faults)} faults "
        f"({sum(f.kind == 'kill-main' for f in kills)} main + "
        f"{sum(f.kind == 'kill-pool' for f in kills)} pool kills, "
        f"{sum(not f.kind.startswith('kill') for f in faults)} restarts) over "
        f"{len(bench.round_seconds) - 2} rounds, {len(faults) - len(hitting)} of them on a "
        f"process that held no job; recovery total {sum(recoveries):.1f} s, median "
        f"{statistics.median(recoveries):.1f} s, max {max(recoveries):.1f} s"
    )
    print(
        f"rounds incomplete {bench.rounds_incomplete}, stuck jobs {len(stuck)}, "
        f"rounds with labels changed {bench.labels_changed}, orphan processes {orphans}"
    )
    for line in stuck:
        print("  " + line)
    for proc in leftovers:
        print("  left running: " + describe(proc))
    ok = not (stuck or orphans or bench.labels_changed or bench.rounds_incomplete)
    return 0 if ok and len(kills) >= bench.args.kills else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=22)
    parser.add_argument("--faults-per-round", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--pool", type=int, default=48, help="pool images (plus 4 validation)")
    parser.add_argument("--lease", type=float, default=4.0, help="TESSERA_JOB_LEASE_SECONDS")
    parser.add_argument("--max-rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tessera-faults-"))
    try:
        code = run(args, root)
    finally:
        if args.keep:
            print(f"logs: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
