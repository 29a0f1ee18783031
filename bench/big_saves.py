"""The save of a large image's mask: a fill-all PATCH at 4000x3000 against 2048x1024.

Seeds one project per database (a temporary SQLite file, and a fresh PostgreSQL database,
dropped at the end) with two images per size, a 26 px superpixel grid (~18,000 superpixels at
4000x3000, ~3,100 at 2048x1024) of which 11 % are queried (~2,000 and ~350), through the
backend's own services (``bench/api_saves.py``'s ``build_project``). Then, per database and
size, saves the edit the annotator's "fill all" sends (every queried superpixel filled; the
class changes from save to save, so each save rewrites every queried pixel) through the
save service (``save_edit`` + commit, in this process: no HTTP, auth or event loop): once
on the first image (the process warms up), then on the second, and prints the wall time of
its first save (a new image: its map is not in the superpixel cache yet, as for each task),
the median wall and CPU time per save of the ``--saves`` after it and the ratio of the two
sizes, with the load average. Then the same as ``PATCH .../mask`` requests to a fresh
``tessera serve``, with the server's CPU per save (/proc).

The grid's map compresses far better than a segmentation's, so a new image's map is
inflated faster here than in use (a 4000x3000 SLIC map: ~25 ms to build its runs).

    .venv/bin/python bench/big_saves.py [--sizes 2048x1024,4000x3000] [--saves 8]
        [--skip-postgres] [--profile FILE]

``--profile FILE``: cProfile of the timed 4000x3000 saves on SQLite, written to FILE (pstats).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from api_saves import (
    CLASSES,
    POSTGRES_ADMIN_URL,
    REQUEST_TIMEOUT_S,
    SECRET_KEY,
    Fixture,
    Size,
    build_project,
    cpu_seconds,
    load_average,
    postgres_database,
    running_server,
)

from backend.annotations.edits import MaskEdit
from backend.annotations.service import save_edit
from core.db import make_engine, make_session_factory
from core.models import Image, User
from core.settings import Settings

CELL = 26
QUERIED_SHARE = 0.11
LARGE = Size(4000, 3000)


@dataclass(frozen=True)
class Timing:
    database: str
    size: Size
    queried: int
    first_ms: float
    wall_ms: float
    cpu_ms: float
    http_first_ms: float
    http_ms: float
    server_cpu_ms: float


def fill_all(ids: list[int], step: int) -> list[list[int]]:
    return [[i, step % len(CLASSES)] for i in ids]


def patch_fill_all(
    settings: Settings, fixture: Fixture, versions: dict[int, int], saves: int, log: Path
) -> tuple[float, float, float]:
    """Fill-all PATCHes to a fresh ``tessera serve``: one of the first image (the process's
    first request), then ``saves + 1`` of the second: the first one's wall ms (its map not in
    the superpixel cache yet, as for each new task), the median wall ms and the server's CPU
    ms (/proc) per save of the rest. ``versions``: each image's mask version."""
    headers = {"Authorization": f"Bearer {fixture.tokens[0]}"}
    walls: list[float] = []
    cpu = 0.0
    with (
        running_server(settings, log) as server,
        httpx.Client(base_url=server.base, headers=headers, timeout=REQUEST_TIMEOUT_S) as http,
    ):
        for image_id, steps in zip(fixture.queried, (1, saves + 1), strict=True):
            url = f"/api/v1/projects/{fixture.project_id}/images/{image_id}/mask"
            for step in range(steps):
                body = {
                    "superpixel_map_id": fixture.map_ids[image_id],
                    "fills": fill_all(fixture.queried[image_id], versions[image_id]),
                    "runs": [],
                    "clicks": 1,
                    "seconds": 1.0,
                }
                content = json.dumps(body).encode()
                before_cpu = cpu_seconds(server.pid)
                began = time.perf_counter()
                response = http.patch(
                    url,
                    content=content,
                    headers={
                        "Content-Type": "application/json",
                        "If-Match": f'"{versions[image_id]}"',
                    },
                )
                wall = (time.perf_counter() - began) * 1000
                response.raise_for_status()
                versions[image_id] = int(response.headers["etag"].strip('"'))
                if steps > 1:
                    walls.append(wall)
                    if step:
                        cpu += cpu_seconds(server.pid) - before_cpu
    return walls[0], statistics.median(walls[1:]), cpu / saves * 1000


def time_fill_all(
    database: str,
    settings: Settings,
    size: Size,
    saves: int,
    profile: cProfile.Profile | None,
    log: Path,
) -> Timing:
    """One save of the first image (this process's first), then ``saves + 1`` of the second
    (the first of them fills the superpixel cache) through the service, then the same as
    PATCH requests (``patch_fill_all``)."""
    fixture = build_project(settings, size, images=2, cell=CELL, queried_share=QUERIED_SHARE)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    walls: list[float] = []
    cpus: list[float] = []
    versions: dict[int, int] = {}
    try:
        for image_id, steps in zip(fixture.queried, (1, saves + 1), strict=True):
            versions[image_id] = 0
            for step in range(steps):
                edit = MaskEdit.from_lists(fill_all(fixture.queried[image_id], step), [])
                with factory() as session:
                    image = session.get(Image, image_id)
                    user = session.get(User, fixture.users[0])
                    assert image is not None and user is not None
                    timed = profile if step > 0 else None
                    if timed is not None:
                        timed.enable()
                    began, began_cpu = time.perf_counter(), time.process_time()
                    save_edit(
                        session,
                        image,
                        user,
                        edit,
                        superpixel_map_id=fixture.map_ids[image_id],
                        expected_version=versions[image_id],
                        clicks=1,
                        seconds=1.0,
                        done=False,
                        settings=settings,
                    )
                    session.commit()
                    if steps > 1:
                        walls.append((time.perf_counter() - began) * 1000)
                        cpus.append((time.process_time() - began_cpu) * 1000)
                    if timed is not None:
                        timed.disable()
                versions[image_id] += 1
    finally:
        engine.dispose()
    http_first, http_wall, server_cpu = patch_fill_all(settings, fixture, versions, saves, log)
    ids = fixture.queried[list(fixture.queried)[1]]
    return Timing(
        database,
        size,
        len(ids),
        walls[0],
        statistics.median(walls[1:]),
        statistics.median(cpus[1:]),
        http_first,
        http_wall,
        server_cpu,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres-admin-url", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--sizes", default=f"2048x1024,{LARGE}")
    parser.add_argument("--saves", type=int, default=8)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    sizes = [Size.parse(s) for s in args.sizes.split(",")]
    print(f"start: load average {load_average()} on {os.cpu_count()} CPUs", flush=True)
    profile = cProfile.Profile() if args.profile else None
    rows: list[Timing] = []
    with tempfile.TemporaryDirectory(prefix="tessera-bench-big-saves-") as tmp:
        root = Path(tmp)
        settings = Settings(
            data_dir=root / "sqlite",
            database_url=f"sqlite:///{root / 'sqlite' / 'tessera.db'}",
            secret_key=SECRET_KEY,
        )
        log = root / "server.log"
        for size in sizes:
            large = profile if size == LARGE else None
            rows.append(time_fill_all("SQLite", settings, size, args.saves, large, log))
            print(rows[-1], flush=True)
        if not args.skip_postgres:
            with postgres_database(args.postgres_admin_url) as url:
                settings_pg = Settings(
                    data_dir=root / "pg", database_url=url, secret_key=SECRET_KEY
                )
                for size in sizes:
                    rows.append(
                        time_fill_all("PostgreSQL", settings_pg, size, args.saves, None, log)
                    )
                    print(rows[-1], flush=True)
    if profile is not None and args.profile is not None:
        profile.dump_stats(str(args.profile))
    print(f"\nend: load average {load_average()}\n")
    print(
        "| database | size | queried filled | service: new image ms | wall ms | CPU ms "
        "| CPU vs smallest | PATCH: new image ms | wall ms | server CPU ms |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        base = min(r.cpu_ms for r in rows if r.database == row.database)
        print(
            f"| {row.database} | {row.size} | {row.queried} | {row.first_ms:.0f} | "
            f"{row.wall_ms:.1f} | {row.cpu_ms:.1f} | {row.cpu_ms / base:.1f}x | "
            f"{row.http_first_ms:.0f} | {row.http_ms:.1f} | {row.server_cpu_ms:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
