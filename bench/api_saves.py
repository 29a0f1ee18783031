"""What a labeling team feels when saving: save latency, CPU and memory of a real server.

Starts ``tessera serve`` as a subprocess on loopback, on a temporary SQLite file (the embedded
default) and on a fresh PostgreSQL database (created here and dropped at the end), with a
project of 50 annotators and 51 queried images per size (480x360 and 2048x1024; one labeling
round, one query per image, a 32 px superpixel grid, ~27 % of its superpixels queried).

Each save is the typical one: 20 more queried superpixels filled with one click each and one
brush stroke (8 rows x 24 px inside another queried superpixel). It goes either the old way,
``PUT .../mask`` with the whole mask PNG (encoded before the clock starts), or the new one,
``PATCH .../mask`` with the edit as JSON (fills and runs; ``backend/annotations/edits.py``).
For each database, size and way, on a freshly started server:

1. one client saves 30 times (each a cycle: ``POST /tasks/next`` for the mask version, then
   the save with ``If-Match``); the server's CPU per save is read from /proc around 30 more
   saves without tasks/next;
2. 50 clients at once (threads, each its own user, token and leased image) save 10 times each,
   while the API process's RSS is sampled every 10 ms (before, peak, and 5 s after).

Before those, per database and size, the server's CPU per request of each kind (health
probe, tasks/next, PATCH, PUT) in interleaved batches on a fresh server (``--cpu-only``: only
that, the primary figure when the machine is shared: wall-clock latency then mostly measures
other people's load).

Then the CPU of the save service alone (``time.process_time`` around ``save_edit`` /
``save_mask`` + commit, in this process, on SQLite). Prints Markdown tables with the ratio of
the edit to the PNG path measured in the same run, and the load average.

    .venv/bin/python bench/api_saves.py [--sizes 480x360,2048x1024] [--skip-postgres]
        [--modes png,edit] [--cpu-only]

The Label Studio figures in the output are the reference numbers from issue 13, not
measured here.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray
from PIL import Image as PILImage
from sqlalchemy import create_engine, select, text

from backend.annotations.edits import MaskEdit
from backend.annotations.service import save_edit, save_mask
from backend.auth.service import create_user, issue_token
from backend.images.service import ingest_images
from backend.images.validation import UploadSource
from backend.projects.schemas import ClassCreate, ProjectCreate
from backend.projects.service import create_project
from core.db import make_engine, make_session_factory
from core.migrate import upgrade_database
from core.models import (
    Annotation,
    Image,
    Membership,
    Project,
    Query,
    Role,
    Round,
    RoundStatus,
    Split,
    TokenKind,
    User,
)
from core.passwords import hash_password
from core.settings import Settings
from core.superpixel_maps import store_superpixel_map

CELL = 32
ANNOTATORS = 50
SINGLE_SAVES = 30
CPU_SAVES = 30
CONCURRENT_SAVES = 10
FILLS_PER_SAVE = 20
STROKE_ROWS, STROKE_LENGTH = 8, 24
QUERIED_SHARE = 0.275
MODES = ("png", "edit")
SECRET_KEY = "bench-api-saves-" + "x" * 32
PASSWORD = "correct horse battery"
CLASSES = [("sky", "#8080ff"), ("road", "#804080"), ("car", "#40008c")]
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HEALTH_DEADLINE_S = 120
REQUEST_TIMEOUT_S = 120
LEASE_RETRIES = 10
RSS_INTERVAL_S = 0.01
SETTLE_S = 5.0
# Label Studio's stock server, as stated in issue 13 (not measured here).
LS_SINGLE_MS = 124.0
LS_CONCURRENT_P95_MS = 29_000.0


def png_bytes(array: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    @classmethod
    def parse(cls, text: str) -> Size:
        width, height = text.lower().split("x")
        return cls(int(width), int(height))

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"

    def grid_labels(self, cell: int = CELL) -> NDArray[np.int32]:
        columns = -(-self.width // cell)
        rows, cols = np.indices((self.height, self.width))
        return ((rows // cell) * columns + cols // cell).astype(np.int32)


@dataclass(frozen=True)
class Fixture:
    size: Size
    project_id: int
    tokens: list[str]  # one per annotator
    users: list[int]  # user id per annotator
    queried: dict[int, list[int]]  # image id -> queried superpixel ids
    map_ids: dict[int, int]  # image id -> superpixel map id


def build_project(
    settings: Settings,
    size: Size,
    images: int = ANNOTATORS + 1,
    *,
    cell: int = CELL,
    queried_share: float = QUERIED_SHARE,
) -> Fixture:
    """Migrates the database and creates the project through the backend's own services:
    ``images`` images, each a ``cell`` px superpixel grid with ``queried_share`` queried."""
    upgrade_database(settings)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    labels = size.grid_labels(cell)
    count = int(labels.max()) + 1
    rng = np.random.default_rng(7)
    hashed = hash_password(PASSWORD)
    tokens: list[str] = []
    user_ids: list[int] = []
    queried: dict[int, list[int]] = {}
    map_ids: dict[int, int] = {}
    tag = f"{size}-{uuid.uuid4().hex[:6]}"
    try:
        with factory() as session:
            users = []
            for index in range(ANNOTATORS + 1):
                user = create_user(
                    session, f"u{index}-{tag}@example.org", PASSWORD, password_hash=hashed
                )
                _, secret = issue_token(
                    session, user, TokenKind.api, key=settings.secret_key, name="bench"
                )
                users.append(user)
                tokens.append(secret)
            lead = session.get(User, users[0].id)
            assert lead is not None
            project = create_project(
                session,
                lead,
                ProjectCreate(
                    name=f"Bench {tag}",
                    classes=[ClassCreate(name=n, colour=c) for n, c in CLASSES],
                    superpixel_size=cell,
                ),
            )
            for user in users[1:]:
                session.add(Membership(project_id=project.id, user_id=user.id, role=Role.annotator))
            round_ = Round(
                project_id=project.id, number=1, strategy="dynamic", status=RoundStatus.labeling
            )
            session.add(round_)
            session.commit()
            project_id, round_id = project.id, round_.id
            user_ids = [u.id for u in users[1:]]
        # Smooth images (a gradient per image): ingest cost is not what this measures.
        ramp = np.linspace(0, 255, size.width, dtype=np.uint8)
        for index in range(images):  # one spare image: more queries than annotators
            pixels = np.empty((size.height, size.width, 3), np.uint8)
            pixels[:] = ramp[None, :, None]
            pixels[..., 0] = index
            with factory() as session:
                project_row = session.get(Project, project_id)
                assert project_row is not None
                result = ingest_images(
                    session,
                    project_row,
                    [UploadSource(f"img{index:03d}.png", io.BytesIO(png_bytes(pixels)))],
                    Split.pool,
                    settings,
                )
                image = session.get(Image, result.created[0])
                assert image is not None
                superpixel_map = store_superpixel_map(
                    session,
                    image,
                    labels,
                    size=project_row.superpixel_size,
                    algorithm=project_row.superpixel_algorithm.value,
                )
                session.flush()
                ids = sorted(
                    int(i)
                    for i in rng.choice(count, size=int(count * queried_share), replace=False)
                )
                session.add(
                    Query(
                        round_id=round_id,
                        image_id=image.id,
                        superpixel_map_id=superpixel_map.id,
                        superpixel_ids=ids,
                        superpixel_scores=[0.5] * len(ids),
                        image_score=0.5,
                    )
                )
                session.commit()
                queried[image.id] = ids
                map_ids[image.id] = superpixel_map.id
    finally:
        engine.dispose()
    return Fixture(size, project_id, tokens[1:], user_ids, queried, map_ids)


@dataclass(frozen=True)
class TypicalSave:
    """One save's change: ``fills`` (id, class) and a stroke's ``runs`` (offset, length, class)."""

    fills: list[list[int]]
    runs: list[list[int]]


def typical_saves(size: Size, ids: list[int], saves: int) -> list[TypicalSave]:
    """20 more queried superpixels filled per save, and a stroke in the next one."""
    columns = -(-size.width // CELL)
    out = []
    for step in range(saves):
        first = step * (FILLS_PER_SAVE + 1)
        fills = [
            [ids[(first + k) % len(ids)], (step + k) % len(CLASSES)] for k in range(FILLS_PER_SAVE)
        ]
        stroked = ids[(first + FILLS_PER_SAVE) % len(ids)]
        top, left = (stroked // columns) * CELL + 4, (stroked % columns) * CELL + 4
        runs = [
            [(top + row) * size.width + left, STROKE_LENGTH, step % len(CLASSES)]
            for row in range(STROKE_ROWS)
            if top + row < size.height
        ]
        out.append(TypicalSave(fills, runs))
    return out


def apply_saves(size: Size, saves: list[TypicalSave]) -> list[NDArray[np.uint8]]:
    """The whole mask after each save (for the PNG path), starting from unlabeled."""
    labels = size.grid_labels().reshape(-1)
    mask = np.full(size.width * size.height, 255, np.uint8)
    out = []
    for save in saves:
        for superpixel, value in save.fills:
            mask[labels == superpixel] = value
        for offset, length, value in save.runs:
            mask[offset : offset + length] = value
        out.append(mask.reshape(size.height, size.width).copy())
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@dataclass
class Server:
    base: str
    pid: int


@contextmanager
def running_server(settings: Settings, log_path: Path) -> Iterator[Server]:
    """``tessera serve`` (one uvicorn process) on a free loopback port, once healthy."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        TESSERA_DATA_DIR=str(settings.data_dir),
        TESSERA_DATABASE_URL=settings.resolved_database_url,
        TESSERA_SECRET_KEY=settings.secret_key,
        TESSERA_LOG_LEVEL="warning",
    )
    command = [sys.executable, "-c", "from tessera.cli import main; main()", "serve"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + HEALTH_DEADLINE_S
            while not _healthy(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.2)
            yield Server(base, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


class RssSampler:
    """The peak RSS of a process, sampled every ``RSS_INTERVAL_S`` in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with suppress(OSError):
                self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(RSS_INTERVAL_S)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Samples:
    save_ms: list[float] = field(default_factory=list)
    cycle_ms: list[float] = field(default_factory=list)
    body_bytes: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    first_lease: Counter[int] = field(default_factory=Counter)
    lease_retries: int = 0
    wall_s: float = 0.0

    def merge(self, other: Samples) -> None:
        self.save_ms += other.save_ms
        self.cycle_ms += other.cycle_ms
        self.body_bytes += other.body_bytes
        self.statuses.update(other.statuses)
        self.errors.update(other.errors)
        self.first_lease.update(other.first_lease)
        self.lease_retries += other.lease_retries

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def failures(self) -> dict[str, int]:
        """Saves answered other than 200, by status, and client-side errors."""
        out = {f"save {code}": n for code, n in self.statuses.items() if code != 200}
        out.update(self.errors)
        return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


def lease_task(http: httpx.Client, project_id: int, samples: Samples) -> int | None:
    """The caller's task (image id): the first answer is recorded as it came, then up to
    ``LEASE_RETRIES`` more tries so that the saves can still be measured."""
    for attempt in range(LEASE_RETRIES + 1):
        response = http.post(f"/api/v1/projects/{project_id}/tasks/next")
        if attempt == 0:
            samples.first_lease[response.status_code] += 1
        else:
            samples.lease_retries += 1
        if response.status_code == 200:
            image_id: int = response.json()["image_id"]
            return image_id
        time.sleep(0.05 * (attempt + 1))
    return None


@dataclass(frozen=True)
class Body:
    content: bytes
    headers: dict[str, str]
    params: dict[str, str]


def save_bodies(fixture: Fixture, image_id: int, mode: str, saves: int) -> list[Body]:
    """Every request body of one annotator's saves, encoded before the clock starts."""
    changes = typical_saves(fixture.size, fixture.queried[image_id], saves)
    if mode == "png":
        masks = apply_saves(fixture.size, changes)
        return [
            Body(
                png_bytes(mask),
                {"Content-Type": "image/png"},
                {"clicks": str(FILLS_PER_SAVE + 1), "seconds": "4.5"},
            )
            for mask in masks
        ]
    return [
        Body(
            json.dumps(
                {
                    "superpixel_map_id": fixture.map_ids[image_id],
                    "fills": change.fills,
                    "runs": change.runs,
                    "clicks": FILLS_PER_SAVE + 1,
                    "seconds": 4.5,
                }
            ).encode(),
            {"Content-Type": "application/json"},
            {},
        )
        for change in changes
    ]


def send(http: httpx.Client, url: str, mode: str, body: Body, version: int) -> httpx.Response:
    return http.request(
        "PUT" if mode == "png" else "PATCH",
        url,
        params=body.params,
        content=body.content,
        headers={**body.headers, "If-Match": f'"{version}"'},
    )


def annotator_session(
    base: str,
    fixture: Fixture,
    token: str,
    mode: str,
    saves: int,
    start: threading.Barrier | None,
) -> Samples:
    """One annotator: lease a task, then ``saves`` cycles of next-task + save."""
    samples = Samples()
    headers = {"Authorization": f"Bearer {token}"}
    project_id = fixture.project_id
    with httpx.Client(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
        image_id = lease_task(http, project_id, samples)
        bodies: list[Body] = []
        if image_id is None:
            samples.errors["no task after retries"] += 1
        else:
            bodies = save_bodies(fixture, image_id, mode, saves)
        url = f"/api/v1/projects/{project_id}/images/{image_id}/mask"
        if start is not None:
            start.wait()
        began_all = time.perf_counter()
        for body in bodies:
            began = time.perf_counter()
            try:
                task = http.post(f"/api/v1/projects/{project_id}/tasks/next")
                if task.status_code != 200:
                    samples.errors[f"tasks/next {task.status_code}"] += 1
                    continue
                save_began = time.perf_counter()
                saved = send(http, url, mode, body, task.json()["mask_version"])
                ended = time.perf_counter()
            except httpx.HTTPError as error:
                samples.errors[type(error).__name__] += 1
                continue
            samples.statuses[saved.status_code] += 1
            samples.save_ms.append((ended - save_began) * 1000)
            samples.cycle_ms.append((ended - began) * 1000)
            samples.body_bytes.append(len(body.content))
        samples.wall_s = time.perf_counter() - began_all
    return samples


def server_cpu_per_save_ms(
    server: Server, fixture: Fixture, token: str, mode: str, saves: int = CPU_SAVES
) -> float:
    """The API process's CPU (user + system, from /proc) per save, over ``CPU_SAVES`` saves
    sent back to back without tasks/next (the version comes from each answer's ETag)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
        task = http.post(f"/api/v1/projects/{fixture.project_id}/tasks/next").json()
        image_id, version = task["image_id"], task["mask_version"]
        bodies = save_bodies(fixture, image_id, mode, saves + 1)
        url = f"/api/v1/projects/{fixture.project_id}/images/{image_id}/mask"
        # The first save of an image fills the process's superpixel cache: not counted.
        response = send(http, url, mode, bodies.pop(0), version)
        response.raise_for_status()
        version = int(response.headers["etag"].strip('"'))
        before = cpu_seconds(server.pid)
        for body in bodies:
            response = send(http, url, mode, body, version)
            response.raise_for_status()
            version = int(response.headers["etag"].strip('"'))
        return (cpu_seconds(server.pid) - before) / len(bodies) * 1000


def server_cpu_floor_ms(
    server: Server, fixture: Fixture, token: str, requests: int = CPU_SAVES
) -> dict[str, float]:
    """The API process's CPU per request that is not a save, for comparison: the health probe
    (HTTP alone) and tasks/next (HTTP, token check, membership, the lease's queries)."""
    headers = {"Authorization": f"Bearer {token}"}
    out = {}
    with httpx.Client(base_url=server.base, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
        for name, method, path in (
            ("health", "GET", "/api/v1/health"),
            ("tasks/next", "POST", f"/api/v1/projects/{fixture.project_id}/tasks/next"),
        ):
            http.request(method, path).raise_for_status()  # warm-up, not counted
            before = cpu_seconds(server.pid)
            for _ in range(requests):
                http.request(method, path).raise_for_status()
            out[name] = (cpu_seconds(server.pid) - before) / requests * 1000
    return out


CPU_BATCHES = 5
CPU_BATCH = 20


@dataclass(frozen=True)
class CpuRow:
    """Server CPU (ms of the API process, user + system) per request of each kind."""

    database: str
    size: Size
    per_request_ms: dict[str, float]
    load: str


class SaveStream:
    """One annotator's typical saves of its leased image, sent one at a time."""

    def __init__(self, server: Server, fixture: Fixture, token: str, mode: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        self.http = httpx.Client(base_url=server.base, headers=headers, timeout=REQUEST_TIMEOUT_S)
        task = self.http.post(f"/api/v1/projects/{fixture.project_id}/tasks/next").json()
        self.mode, self.version = mode, int(task["mask_version"])
        image_id = task["image_id"]
        self.url = f"/api/v1/projects/{fixture.project_id}/images/{image_id}/mask"
        # The first save of an image fills the superpixel cache and the caller warms up with
        # the second: neither is counted.
        self.bodies = iter(save_bodies(fixture, image_id, mode, CPU_BATCHES * CPU_BATCH + 2))
        self.send_one()

    def send_one(self) -> None:
        response = send(self.http, self.url, self.mode, next(self.bodies), self.version)
        response.raise_for_status()
        self.version = int(response.headers["etag"].strip('"'))


def measure_cpu(database: str, settings: Settings, workdir: Path, size: Size) -> CpuRow:
    """The API process's CPU per request of each kind on one fresh server: the health probe
    (HTTP alone), tasks/next, a typical PATCH edit and the same change as a whole-mask PUT
    (each way on its own leased image). ``CPU_BATCHES`` rounds of ``CPU_BATCH`` requests of
    each kind in turn, so that every kind sees the same load; the median batch is reported."""
    fixture = build_project(settings, size, images=3)
    batches: dict[str, list[float]] = {}
    with running_server(settings, workdir / f"server-cpu-{database}.log") as server:
        headers = {"Authorization": f"Bearer {fixture.tokens[0]}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
            next_path = f"/api/v1/projects/{fixture.project_id}/tasks/next"
            kinds = {
                "health": lambda: http.get("/api/v1/health").raise_for_status(),
                "tasks/next": lambda: http.post(next_path).raise_for_status(),
                "PATCH edit": SaveStream(server, fixture, fixture.tokens[0], "edit").send_one,
                "PUT PNG": SaveStream(server, fixture, fixture.tokens[1], "png").send_one,
            }
            for request in kinds.values():
                request()  # warm-up, not counted
            for _ in range(CPU_BATCHES):
                for name, request in kinds.items():
                    before = cpu_seconds(server.pid)
                    for _ in range(CPU_BATCH):
                        request()
                    spent = (cpu_seconds(server.pid) - before) / CPU_BATCH * 1000
                    batches.setdefault(name, []).append(spent)
        load = load_average()
    out = {name: float(np.median(values)) for name, values in batches.items()}
    out["tasks/next + PATCH"] = out["tasks/next"] + out["PATCH edit"]
    print(
        f"[{database} {size}] server CPU ms per request (median of {CPU_BATCHES} batches): "
        + ", ".join(f"{k} {v:.2f}" for k, v in out.items())
        + f"; load average {load}",
        flush=True,
    )
    return CpuRow(database, size, out, load)


def report_cpu(rows: list[CpuRow], cpus: int, start_load: str) -> None:
    print()
    print(
        f"Server CPU per request (`tessera serve`, 1 process, /proc utime + stime, median of "
        f"{CPU_BATCHES} batches of {CPU_BATCH} requests of each kind in turn), {cpus} CPUs; load "
        f"average (1/5/15 min) at the start: {start_load}, at the end: {load_average()}"
    )
    print()
    kinds = list(rows[0].per_request_ms) if rows else []
    print("| database | size | " + " | ".join(f"{k} ms" for k in kinds) + " | PATCH / PUT | load |")
    print("|---|---|" + "---:|" * len(kinds) + "---:|---|")
    for row in rows:
        ms = row.per_request_ms
        print(
            f"| {row.database} | {row.size} | "
            + " | ".join(f"{ms[k]:.2f}" for k in kinds)
            + f" | {ms['PATCH edit'] / ms['PUT PNG']:.3f} | {row.load} |"
        )


def run_concurrent(base: str, fixture: Fixture, mode: str) -> Samples:
    barrier = threading.Barrier(ANNOTATORS + 1, timeout=600)
    results: list[Samples | None] = [None] * ANNOTATORS

    def work(index: int) -> None:
        try:
            results[index] = annotator_session(
                base, fixture, fixture.tokens[index], mode, CONCURRENT_SAVES, barrier
            )
        except threading.BrokenBarrierError:
            results[index] = Samples(errors=Counter({"barrier broken": 1}))

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(ANNOTATORS)]
    for thread in threads:
        thread.start()
    total = Samples()
    with suppress(threading.BrokenBarrierError):
        barrier.wait()  # every client holds its task and its encoded bodies
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=900)
    total.wall_s = time.perf_counter() - began
    for result in results:
        if result is None:
            total.errors["client thread unfinished"] += 1
        else:
            total.merge(result)
    return total


@dataclass
class Result:
    database: str
    size: Size
    mode: str
    single: Samples
    concurrent: Samples
    cpu_ms: float
    floor_ms: dict[str, float]
    rss_start: float
    rss_before: float
    rss_peak: float
    rss_after: float
    load: str


def measure(
    database: str, settings: Settings, workdir: Path, size: Size, modes: list[str]
) -> list[Result]:
    started = time.perf_counter()
    fixture = build_project(settings, size)
    print(
        f"[{database} {size}] project built in {time.perf_counter() - started:.1f} s "
        f"({len(fixture.queried)} queried images)",
        flush=True,
    )
    results = []
    for mode in modes:
        with running_server(settings, workdir / f"server-{database}.log") as server:
            rss_start = rss_mb(server.pid)
            # The single client is annotator 0; its task stays leased to it later on.
            single = annotator_session(
                server.base, fixture, fixture.tokens[0], mode, SINGLE_SAVES, None
            )
            cpu_ms = server_cpu_per_save_ms(server, fixture, fixture.tokens[0], mode)
            floor_ms = server_cpu_floor_ms(server, fixture, fixture.tokens[0])
            rss_before = rss_mb(server.pid)
            with RssSampler(server.pid) as sampler:
                concurrent = run_concurrent(server.base, fixture, mode)
            time.sleep(SETTLE_S)
            rss_after = rss_mb(server.pid)
            load = load_average()
            print(
                f"[{database} {size} {mode}] done: save p95 "
                f"{percentile(concurrent.save_ms, 95):.0f} ms at {ANNOTATORS} clients, "
                f"{cpu_ms:.1f} ms CPU per save; RSS {rss_before:.0f} -> peak "
                f"{sampler.peak:.0f} -> {rss_after:.0f} MB; load average {load}",
                flush=True,
            )
            results.append(
                Result(
                    database,
                    size,
                    mode,
                    single,
                    concurrent,
                    cpu_ms,
                    floor_ms,
                    rss_start,
                    rss_before,
                    sampler.peak,
                    rss_after,
                    load,
                )
            )
    return results


def service_cpu_ms(settings: Settings, size: Size, saves: int = 30) -> dict[str, float]:
    """CPU (``time.process_time``) of the save service plus commit, in this process, per save:
    what one request costs the handler without HTTP, auth and the event loop."""
    fixture = build_project(settings, size, images=len(MODES))
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    out: dict[str, float] = {}
    try:
        images = iter(fixture.queried)
        for mode in MODES:
            image_id = next(images)
            changes = typical_saves(size, fixture.queried[image_id], saves)
            masks = [png_bytes(m) for m in apply_saves(size, changes)]
            spent = 0.0
            for step, change in enumerate(changes):
                with factory() as session:
                    image = session.get(Image, image_id)
                    user = session.get(User, fixture.users[0])
                    assert image is not None and user is not None
                    version = session.scalar(
                        select(Annotation.version).where(Annotation.image_id == image_id)
                    )
                    began = time.process_time()
                    if mode == "png":
                        save_mask(
                            session,
                            image,
                            user,
                            masks[step],
                            expected_version=int(version or 0),
                            clicks=1,
                            seconds=1.0,
                            done=False,
                            settings=settings,
                        )
                    else:
                        save_edit(
                            session,
                            image,
                            user,
                            MaskEdit.from_lists(change.fills, change.runs),
                            superpixel_map_id=fixture.map_ids[image_id],
                            expected_version=int(version or 0),
                            clicks=1,
                            seconds=1.0,
                            done=False,
                            settings=settings,
                        )
                    session.commit()
                    if step:  # the first save fills the superpixel cache
                        spent += time.process_time() - began
            out[mode] = spent / (saves - 1) * 1000
    finally:
        engine.dispose()
    return out


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    name = f"tessera_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _ms(value: float) -> str:
    return "n/a" if value != value else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _find(results: list[Result], database: str, size: Size, mode: str) -> Result | None:
    for result in results:
        if (result.database, result.size, result.mode) == (database, size, mode):
            return result
    return None


def report(
    results: list[Result], service: dict[str, dict[str, float]], cpus: int, start_load: str
) -> None:
    print()
    print(
        f"Saves through `tessera serve` (1 uvicorn process), loopback, {cpus} CPUs; typical "
        f"save = {FILLS_PER_SAVE} fills + one {STROKE_ROWS}x{STROKE_LENGTH} px stroke; load "
        f"average (1/5/15 min) at the start: {start_load}, at the end: {load_average()}"
    )
    print()
    print(
        "| database | size | save | scenario | saves ok | save p50 ms | save p95 ms "
        "| save max ms | next+save p95 ms | saves/s | body bytes | failed saves "
        "| server CPU ms/save | RSS MB before / peak / after | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        way = "PUT PNG" if r.mode == "png" else "PATCH edit"
        for label, samples, expected in (
            (f"1 client x {SINGLE_SAVES}", r.single, SINGLE_SAVES),
            (
                f"{ANNOTATORS} clients x {CONCURRENT_SAVES}",
                r.concurrent,
                ANNOTATORS * CONCURRENT_SAVES,
            ),
        ):
            concurrent = samples is r.concurrent
            failures = ", ".join(f"{k}: {v}" for k, v in sorted(samples.failures.items()))
            rate = samples.ok / samples.wall_s if samples.wall_s else float("nan")
            rss = (
                f"{r.rss_before:.0f} / {r.rss_peak:.0f} / {r.rss_after:.0f}"
                if concurrent
                else f"{r.rss_start:.0f} at start"
            )
            print(
                f"| {r.database} | {r.size} | {way} | {label} | {samples.ok}/{expected} "
                f"| {_ms(percentile(samples.save_ms, 50))} "
                f"| {_ms(percentile(samples.save_ms, 95))} "
                f"| {_ms(max(samples.save_ms, default=float('nan')))} "
                f"| {_ms(percentile(samples.cycle_ms, 95))} | {rate:.1f} "
                f"| {int(np.median(samples.body_bytes)) if samples.body_bytes else 0:,} "
                f"| {failures or 'none'} | {'' if concurrent else _ms(r.cpu_ms)} | {rss} "
                f"| {r.load if concurrent else ''} |"
            )
    print(
        "| Label Studio (reference from issue 13, not measured here) | 480x360 | | 1 client | "
        f"| ~{LS_SINGLE_MS:.0f} | | | | | | | | | |"
    )
    print(
        "| Label Studio (reference from issue 13, not measured here) | 480x360 | "
        f"| 50 annotators | | | ~{LS_CONCURRENT_P95_MS:,.0f} | | | | | HTTP 500 | | | |"
    )
    print()
    print("Edit (PATCH) against the PNG path (PUT) in this run (ratio < 1: the edit is faster):")
    print()
    for r in results:
        if r.mode != "edit":
            continue
        old = _find(results, r.database, r.size, "png")
        if old is None:
            continue
        p95 = percentile(r.concurrent.save_ms, 95) / percentile(old.concurrent.save_ms, 95)
        p50 = percentile(r.single.save_ms, 50) / percentile(old.single.save_ms, 50)
        print(
            f"- {r.database} {r.size}: {ANNOTATORS} clients save p95 "
            f"{percentile(r.concurrent.save_ms, 95):.0f} / "
            f"{percentile(old.concurrent.save_ms, 95):.0f} ms = {p95:.3f}; 1 client p50 "
            f"{percentile(r.single.save_ms, 50):.1f} / {percentile(old.single.save_ms, 50):.1f} "
            f"ms = {p50:.3f}; server CPU per save {r.cpu_ms:.1f} / {old.cpu_ms:.1f} ms = "
            f"{r.cpu_ms / old.cpu_ms:.3f}; peak RSS {r.rss_peak:.0f} / {old.rss_peak:.0f} MB"
        )
    for r in results:
        floor = ", ".join(f"{name} {ms:.1f} ms" for name, ms in r.floor_ms.items())
        print(
            f"- {r.database} {r.size} ({r.mode} run): server CPU per request that is not a "
            f"save: {floor}"
        )
    for size_name, per_mode in service.items():
        if "png" in per_mode and "edit" in per_mode:
            print(
                f"- save service alone (time.process_time, {size_name}): edit "
                f"{per_mode['edit']:.2f} ms, PNG {per_mode['png']:.2f} ms per save = "
                f"{per_mode['edit'] / per_mode['png']:.3f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--sizes", default="480x360,2048x1024")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="only the server CPU per request (health, tasks/next, PATCH, PUT), no 50 clients",
    )
    args = parser.parse_args()
    sizes = [Size.parse(s) for s in args.sizes.split(",")]
    modes = [m for m in args.modes.split(",") if m in MODES]
    cpus = os.cpu_count() or 1
    start_load = load_average()
    print(f"start: load average {start_load} on {cpus} CPUs", flush=True)
    results: list[Result] = []
    service: dict[str, dict[str, float]] = {}
    cpu_rows: list[CpuRow] = []
    with tempfile.TemporaryDirectory(prefix="tessera-bench-saves-") as tmp:
        root = Path(tmp)
        sqlite_dir = root / "sqlite"
        settings = Settings(
            data_dir=sqlite_dir,
            database_url=f"sqlite:///{sqlite_dir / 'tessera.db'}",
            secret_key=SECRET_KEY,
        )
        for size in sizes:
            cpu_rows.append(measure_cpu("SQLite", settings, root, size))
        if not args.skip_postgres:
            with postgres_database(args.postgres_admin_url) as url:
                settings_pg = Settings(
                    data_dir=root / "pg-cpu", database_url=url, secret_key=SECRET_KEY
                )
                for size in sizes:
                    cpu_rows.append(measure_cpu("PostgreSQL", settings_pg, root, size))
        if args.cpu_only:
            report_cpu(cpu_rows, cpus, start_load)
            return 0
        for size in sizes:
            results += measure("SQLite", settings, root, size, modes)
        if not args.skip_postgres:
            with postgres_database(args.postgres_admin_url) as url:
                settings_pg = Settings(
                    data_dir=root / "pg", database_url=url, secret_key=SECRET_KEY
                )
                for size in sizes:
                    results += measure("PostgreSQL", settings_pg, root, size, modes)
                for size in sizes:
                    service[f"PostgreSQL, {size}"] = service_cpu_ms(settings_pg, size)
        for size in sizes:
            service[f"SQLite, {size}"] = service_cpu_ms(settings, size)
    report(results, service, cpus, start_load)
    report_cpu(cpu_rows, cpus, start_load)
    bad = sum(
        sum(r.single.failures.values()) + sum(r.concurrent.failures.values()) for r in results
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
