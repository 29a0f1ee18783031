"""What a labeling team feels when saving brush annotations: save latency through a real server.

Starts ``tessera serve`` as a subprocess on loopback, once on a temporary SQLite file (the
embedded default) and once on a fresh PostgreSQL database (created here and dropped at the
end), on a project with 50 annotators and 51 queried 480x360 images (one labeling round,
one query per image, a 32 px superpixel grid, ~27 % of its superpixels queried). Then:

1. one client saves its mask 30 times;
2. 50 clients at once (threads, each its own user, token and leased image) save 10 times each.

Each save is one cycle: ``POST /tasks/next`` (the caller's leased task, with the current mask
version), then ``PUT .../mask?clicks=..&seconds=..`` with ``If-Match`` = that version and a
partial mask that paints one more queried superpixel. Mask PNGs are encoded before the clock
starts. Prints a Markdown table (latency of the PUT alone and of the whole cycle), non-2xx
responses by status, throughput and the load average.

    .venv/bin/python bench/api_saves.py [--postgres-admin-url URL] [--skip-postgres]

The Label Studio figures in the output are the reference numbers from the brief, not
measured here.
"""

from __future__ import annotations

import argparse
import io
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
from sqlalchemy import create_engine, text

from backend.auth.service import create_user, hash_password, issue_token
from backend.db import make_engine, make_session_factory
from backend.images.service import ingest_images, store_superpixel_map
from backend.images.validation import UploadSource
from backend.migrate import upgrade_database
from backend.models import (
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
from backend.projects.schemas import ClassCreate, ProjectCreate
from backend.projects.service import create_project
from backend.settings import Settings

WIDTH, HEIGHT, CELL = 480, 360, 32
ANNOTATORS = 50
SINGLE_SAVES = 30
CONCURRENT_SAVES = 10
QUERIED_SHARE = 0.275
SECRET_KEY = "bench-api-saves-" + "x" * 32
PASSWORD = "correct horse battery"
CLASSES = [("sky", "#8080ff"), ("road", "#804080"), ("car", "#40008c")]
POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HEALTH_DEADLINE_S = 120
REQUEST_TIMEOUT_S = 120
LEASE_RETRIES = 10
# Label Studio's stock server, as stated in the brief (not measured here).
LS_SINGLE_MS = 92.0
LS_CONCURRENT_P95_MS = 15_000.0


def png_bytes(array: NDArray[Any]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def grid_labels() -> NDArray[np.int32]:
    columns = -(-WIDTH // CELL)
    rows, cols = np.indices((HEIGHT, WIDTH))
    return ((rows // CELL) * columns + cols // CELL).astype(np.int32)


@dataclass(frozen=True)
class Fixture:
    project_id: int
    tokens: list[str]  # one per annotator
    queried: dict[int, list[int]]  # image id -> queried superpixel ids


def build_project(settings: Settings) -> Fixture:
    """Migrates the database and creates the project through the backend's own services."""
    upgrade_database(settings)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    labels = grid_labels()
    count = int(labels.max()) + 1
    rng = np.random.default_rng(7)
    hashed = hash_password(PASSWORD)
    tokens: list[str] = []
    queried: dict[int, list[int]] = {}
    try:
        with factory() as session:
            users = []
            for index in range(ANNOTATORS + 1):
                user = create_user(session, f"u{index}@example.org", PASSWORD, password_hash=hashed)
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
                    name="Bench",
                    classes=[ClassCreate(name=n, colour=c) for n, c in CLASSES],
                    superpixel_size=CELL,
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
        for index in range(ANNOTATORS + 1):  # one spare image: more queries than annotators
            pixels = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
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
                    for i in rng.choice(count, size=int(count * QUERIED_SHARE), replace=False)
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
    finally:
        engine.dispose()
    return Fixture(project_id, tokens[1:], queried)


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


@contextmanager
def running_server(settings: Settings, log_path: Path) -> Iterator[str]:
    """``tessera serve`` on a free loopback port; yields its base URL once healthy."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(
        TESSERA_DATA_DIR=str(settings.data_dir),
        TESSERA_DATABASE_URL=settings.resolved_database_url,
        TESSERA_SECRET_KEY=settings.secret_key,
        TESSERA_LOG_LEVEL="warning",
    )
    command = [sys.executable, "-c", "from backend.cli import main; main()", "serve"]
    with log_path.open("wb") as log:
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
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)


@dataclass
class Samples:
    put_ms: list[float] = field(default_factory=list)
    cycle_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    first_lease: Counter[int] = field(default_factory=Counter)
    lease_retries: int = 0
    wall_s: float = 0.0

    def merge(self, other: Samples) -> None:
        self.put_ms += other.put_ms
        self.cycle_ms += other.cycle_ms
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
        out = {f"PUT {code}": n for code, n in self.statuses.items() if code != 200}
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


def annotator_session(
    base: str,
    project_id: int,
    token: str,
    fixture: Fixture,
    saves: int,
    start: threading.Barrier | None,
) -> Samples:
    """One annotator: lease a task, then ``saves`` cycles of next-task + PUT mask."""
    samples = Samples()
    headers = {"Authorization": f"Bearer {token}"}
    labels = grid_labels()
    with httpx.Client(base_url=base, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
        image_id = lease_task(http, project_id, samples)
        bodies = []
        if image_id is None:
            samples.errors["no task after retries"] += 1
        else:
            # Paint one more queried superpixel per save; encode every mask before the clock.
            ids = fixture.queried[image_id]
            mask = np.full((HEIGHT, WIDTH), 255, np.uint8)
            for step in range(saves):
                mask[labels == ids[step % len(ids)]] = step % len(CLASSES)
                bodies.append(png_bytes(mask))
        if start is not None:
            start.wait()
        began_all = time.perf_counter()
        for step, body in enumerate(bodies):
            began = time.perf_counter()
            try:
                task = http.post(f"/api/v1/projects/{project_id}/tasks/next")
                if task.status_code != 200:
                    samples.errors[f"tasks/next {task.status_code}"] += 1
                    continue
                version = task.json()["mask_version"]
                put_began = time.perf_counter()
                saved = http.put(
                    f"/api/v1/projects/{project_id}/images/{image_id}/mask",
                    params={"clicks": 3 + step, "seconds": 4.5},
                    content=body,
                    headers={"If-Match": f'"{version}"', "Content-Type": "image/png"},
                )
                ended = time.perf_counter()
            except httpx.HTTPError as error:
                samples.errors[type(error).__name__] += 1
                continue
            samples.statuses[saved.status_code] += 1
            samples.put_ms.append((ended - put_began) * 1000)
            samples.cycle_ms.append((ended - began) * 1000)
        samples.wall_s = time.perf_counter() - began_all
    return samples


def run_concurrent(base: str, fixture: Fixture) -> Samples:
    barrier = threading.Barrier(ANNOTATORS + 1, timeout=600)
    results: list[Samples | None] = [None] * ANNOTATORS

    def work(index: int) -> None:
        try:
            results[index] = annotator_session(
                base, fixture.project_id, fixture.tokens[index], fixture, CONCURRENT_SAVES, barrier
            )
        except threading.BrokenBarrierError:
            results[index] = Samples(errors=Counter({"barrier broken": 1}))

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(ANNOTATORS)]
    for thread in threads:
        thread.start()
    total = Samples()
    with suppress(threading.BrokenBarrierError):
        barrier.wait()  # every client holds its task and its encoded masks
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
class BackendResult:
    name: str
    single: Samples
    concurrent: Samples


def measure(name: str, settings: Settings, workdir: Path) -> BackendResult:
    started = time.perf_counter()
    fixture = build_project(settings)
    print(
        f"[{name}] project built in {time.perf_counter() - started:.1f} s "
        f"({len(fixture.queried)} queried images)",
        flush=True,
    )
    with running_server(settings, workdir / f"server-{name}.log") as base:
        # The single client is annotator 0; its task stays leased to it in the concurrent phase.
        single = annotator_session(
            base, fixture.project_id, fixture.tokens[0], fixture, SINGLE_SAVES, None
        )
        print(f"[{name}] single client done; load average {load_average()}", flush=True)
        concurrent = run_concurrent(base, fixture)
        print(f"[{name}] {ANNOTATORS} clients done; load average {load_average()}", flush=True)
    return BackendResult(name, single, concurrent)


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


def report(results: list[BackendResult], cpus: int, start_load: str) -> None:
    print()
    print(
        f"Save latency through `tessera serve` (1 uvicorn process), {WIDTH}x{HEIGHT} masks, "
        f"loopback, {cpus} CPUs; load average (1/5/15 min) at the start: {start_load}, "
        f"at the end: {load_average()}"
    )
    print()
    print(
        "| database | scenario | saves ok | PUT p50 ms | PUT p95 ms | PUT max ms "
        "| next+PUT p50 ms | next+PUT p95 ms | saves/s | failed saves | first tasks/next |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for result in results:
        for label, samples, expected in (
            (f"1 client x {SINGLE_SAVES} saves", result.single, SINGLE_SAVES),
            (
                f"{ANNOTATORS} clients x {CONCURRENT_SAVES} saves",
                result.concurrent,
                ANNOTATORS * CONCURRENT_SAVES,
            ),
        ):
            leases = ", ".join(f"{k}: {v}" for k, v in sorted(samples.first_lease.items()))
            if samples.lease_retries:
                leases += f" (then {samples.lease_retries} retries)"
            failures = ", ".join(f"{k}: {v}" for k, v in sorted(samples.failures.items()))
            rate = samples.ok / samples.wall_s if samples.wall_s else float("nan")
            print(
                f"| {result.name} | {label} | {samples.ok}/{expected} "
                f"| {_ms(percentile(samples.put_ms, 50))} | {_ms(percentile(samples.put_ms, 95))} "
                f"| {_ms(max(samples.put_ms, default=float('nan')))} "
                f"| {_ms(percentile(samples.cycle_ms, 50))} "
                f"| {_ms(percentile(samples.cycle_ms, 95))} | {rate:.1f} "
                f"| {failures or 'none'} | {leases} |"
            )
    print(
        f"| Label Studio (reference from the brief, not measured here) | 1 client | | "
        f"~{LS_SINGLE_MS:.0f} | | | | | | | |"
    )
    print(
        f"| Label Studio (reference from the brief, not measured here) | 50 annotators | | "
        f"| ~{LS_CONCURRENT_P95_MS:,.0f} | | | | | HTTP 500 database is locked | |"
    )
    by_name = {r.name: r for r in results}
    print()
    if "SQLite" in by_name and "PostgreSQL" in by_name:
        for label, attr in (("1 client", "single"), (f"{ANNOTATORS} clients", "concurrent")):
            lite: Samples = getattr(by_name["SQLite"], attr)
            pg: Samples = getattr(by_name["PostgreSQL"], attr)
            ratio = percentile(pg.put_ms, 95) / percentile(lite.put_ms, 95)
            print(f"- {label}: PostgreSQL PUT p95 / SQLite PUT p95 = {ratio:.2f}")
    for result in results:
        refused = sum(n for code, n in result.concurrent.first_lease.items() if code != 200)
        if refused:
            print(
                f"- {result.name}: {refused} of {ANNOTATORS} annotators asking tasks/next at "
                "the same moment got no task (other queries were free); the bench retried"
            )
    for result in results:
        single_p50 = percentile(result.single.put_ms, 50)
        conc_p95 = percentile(result.concurrent.put_ms, 95)
        print(
            f"- {result.name} vs Label Studio reference: 1 client PUT p50 {single_p50:.1f} ms "
            f"= {single_p50 / LS_SINGLE_MS:.2f}x of ~{LS_SINGLE_MS:.0f} ms; "
            f"{ANNOTATORS} clients PUT p95 {conc_p95:,.0f} ms "
            f"= {conc_p95 / LS_CONCURRENT_P95_MS:.3f}x of ~{LS_CONCURRENT_P95_MS:,.0f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    start_load = load_average()
    print(f"start: load average {start_load} on {cpus} CPUs", flush=True)
    results: list[BackendResult] = []
    with tempfile.TemporaryDirectory(prefix="tessera-bench-saves-") as tmp:
        root = Path(tmp)
        sqlite_dir = root / "sqlite"
        settings = Settings(
            data_dir=sqlite_dir,
            database_url=f"sqlite:///{sqlite_dir / 'tessera.db'}",
            secret_key=SECRET_KEY,
        )
        results.append(measure("SQLite", settings, root))
        if not args.skip_postgres:
            with postgres_database(args.postgres_admin_url) as url:
                settings = Settings(data_dir=root / "pg", database_url=url, secret_key=SECRET_KEY)
                results.append(measure("PostgreSQL", settings, root))
    report(results, cpus, start_load)
    bad = sum(
        sum(r.single.failures.values()) + sum(r.concurrent.failures.values()) for r in results
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
