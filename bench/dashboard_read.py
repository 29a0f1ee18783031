"""What one dashboard poll costs: ``GET .../dashboard`` (every part, what the page asks every
30 s) on a project of 500 images, in process through the full app, on SQLite and PostgreSQL.

The project: 400 pool images, each with a partial mask (about a third labeled, 11 classes)
and ground truth, and 100 validation images with complete ground truth, all 480x360 (the
CamVid size). Before migration 0012 the class balance decoded every validation ground truth
on each poll, and every mask once per version (kept in ``annotation_class_counts``); now it
sums ``class_pixel_counts``. The old class balance is frozen below and timed in the same
run, on the same rows, in two states:

- steady: masks unchanged since the last poll (their counts come from the old per-version
  cache, filled here), ground truth decoded as on every poll;
- after saves: every mask changed since the last poll (each decoded once more), as after a
  busy round.

The old whole GET is estimated as the new GET minus the new class balance plus the old one.
Prints medians over the repeats, the ratios, and the load average.

    .venv/bin/python bench/dashboard_read.py [--repeats 7] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image as PILImage
from sqlalchemy import JSON, Column, Integer, MetaData, Table, select, update
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.app import create_app
from backend.auth.service import create_user, issue_token
from backend.dashboard.budget import budget
from backend.dashboard.class_balance import class_balance
from backend.dashboard.jobs import jobs
from backend.dashboard.learning_curve import learning_curve
from backend.dashboard.prefill import prefill_effort
from backend.dashboard.rounds_table import rounds
from backend.dashboard.team import team
from backend.images.service import ingest_images, set_ground_truth
from backend.images.validation import UploadSource
from backend.projects.schemas import ClassCreate, ProjectCreate
from backend.projects.service import create_project
from core.class_counts import add_mask_delta, pixels_per_class
from core.masks import UNLABELED, decode_stored_mask, encode_mask_png
from core.migrate import upgrade_database
from core.models import Annotation, Image, Project, Split, TokenKind
from core.settings import Settings
from tests.services import postgres_database

WIDTH, HEIGHT = 480, 360
POOL, VALIDATION = 400, 100
CLASSES = 11
BATCH = 25

# The old per-version cache, as migration 0006 created it (dropped by 0012); made here in a
# table of its own so the frozen old code below reads what it used to read.
_old = MetaData()
old_cache = Table(
    "bench_annotation_class_counts",
    _old,
    Column("annotation_id", Integer, primary_key=True),
    Column("version", Integer),
    Column("counts", JSON),
)


def _png(array: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _blocks(rng: np.random.Generator, labeled_share: float) -> NDArray[np.uint8]:
    """A 480x360 mask of 24x24 px blocks, each a random class or (1 - share) unlabeled."""
    rows, cols = HEIGHT // 24, WIDTH // 24
    classes = rng.integers(0, CLASSES, size=(rows, cols)).astype(np.uint8)
    classes[rng.random((rows, cols)) > labeled_share] = UNLABELED
    return np.kron(classes, np.ones((24, 24), np.uint8))


def build(settings: Settings) -> tuple[int, str]:
    """Creates the project; returns its id and the lead's API token."""
    upgrade_database(settings)
    app = create_app(settings)
    factory = app.state.session_factory
    rng = np.random.default_rng(0)
    # A smooth picture: PNG-cheap to make and to ingest.
    picture = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    picture[..., 0] = np.arange(WIDTH)[None, :] % 256
    with factory() as session:
        lead = create_user(session, "lead@example.org", "correct horse battery")
        project = create_project(
            session,
            lead,
            ProjectCreate(
                name="dashboard bench",
                classes=[ClassCreate(name=f"c{k}", colour=f"#{k:02x}8080") for k in range(CLASSES)],
            ),
        )
        _, token = issue_token(session, lead, TokenKind.api, key=settings.secret_key, name="b")
        session.commit()
        project_id, lead_id = project.id, lead.id
    for split, count in ((Split.pool, POOL), (Split.validation, VALIDATION)):
        for start in range(0, count, BATCH):
            with factory() as session:
                owner = session.get(Project, project_id)
                assert owner is not None
                sources = []
                for index in range(start, min(start + BATCH, count)):
                    picture[0, 0] = [index % 256, index // 256, split == Split.pool]
                    sources.append(UploadSource(f"{split}{index}.png", io.BytesIO(_png(picture))))
                created = ingest_images(session, owner, sources, split, settings).created
                for image_id in created:
                    image = session.get(Image, image_id)
                    assert image is not None
                    truth = _blocks(rng, 1.0)
                    set_ground_truth(session, image, "truth.png", _png(truth), settings)
                    if split == Split.pool:
                        mask = _blocks(rng, 0.33)
                        session.execute(
                            update(Annotation)
                            .where(Annotation.image_id == image_id)
                            .values(
                                mask_png=encode_mask_png(mask),
                                version=1,
                                labeled_pixels=int((mask != UNLABELED).sum()),
                                updated_by_id=lead_id,
                            )
                        )
                        add_mask_delta(session, image_id, pixels_per_class(mask))
                session.commit()
    app.state.engine.dispose()
    return project_id, token


# --- The class balance's counting before migration 0012, frozen -----------------------------


def old_truth_counts(session: Session, project_id: int) -> NDArray[np.int64]:
    """Every validation ground truth decoded, as on every poll."""
    counts = np.zeros(256, dtype=np.int64)
    statement = select(Image.ground_truth_png, Image.width, Image.height).where(
        Image.project_id == project_id,
        Image.split == Split.validation,
        Image.ground_truth_png.is_not(None),
    )
    for png, width, height in session.execute(statement.execution_options(yield_per=16)):
        counts += np.bincount(decode_stored_mask(png, width, height).ravel(), minlength=256)
    return counts


def old_mask_counts(session: Session, project_id: int) -> NDArray[np.int64]:
    """Cached counts of mask versions seen before; the others decoded and cached."""
    counts = np.zeros(256, dtype=np.int64)
    rows = session.execute(
        select(Annotation.id, Annotation.version, old_cache.c.version, old_cache.c.counts)
        .join(Image, Image.id == Annotation.image_id)
        .outerjoin(old_cache, old_cache.c.annotation_id == Annotation.id)
        .where(
            Image.project_id == project_id,
            Annotation.mask_png.is_not(None),
            Annotation.labeled_pixels > 0,
        )
    ).all()
    stale = []
    for annotation_id, version, cached_version, cached in rows:
        if cached_version == version and cached is not None:
            for value, pixels in cached.items():
                counts[int(value)] += int(pixels)
        else:
            stale.append(annotation_id)
    for start in range(0, len(stale), 64):
        for annotation_id, version, png, width, height in session.execute(
            select(
                Annotation.id, Annotation.version, Annotation.mask_png, Image.width, Image.height
            )
            .join(Image, Image.id == Annotation.image_id)
            .where(Annotation.id.in_(stale[start : start + 64]))
        ):
            bins = np.bincount(decode_stored_mask(png, width, height).ravel(), minlength=256)
            bins[UNLABELED] = 0
            counts += bins
            entry = {str(int(k)): int(bins[k]) for k in np.flatnonzero(bins)}
            session.execute(old_cache.delete().where(old_cache.c.annotation_id == annotation_id))
            session.execute(
                old_cache.insert().values(
                    annotation_id=annotation_id, version=version, counts=entry
                )
            )
    return counts


# ---------------------------------------------------------------------------------------------


def _median_ms(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


PARTS: dict[str, Callable[[Session, Project], Any]] = {
    "budget": budget,
    "learning_curve": learning_curve,
    "rounds": rounds,
    "class_balance": class_balance,
    "team": team,
    "jobs": jobs,
    "prefill": lambda session, project: prefill_effort(session, project.id),
}


def measure(settings: Settings, repeats: int) -> dict[str, float]:
    project_id, token = build(settings)
    app = create_app(settings)
    factory = app.state.session_factory
    engine = app.state.engine
    _old.create_all(engine)
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/projects/{project_id}/dashboard"

    def get() -> None:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text

    def part(compute: Callable[[Session, Project], Any]) -> Callable[[], None]:
        def run() -> None:
            with factory() as session:
                project = session.get(Project, project_id)
                assert project is not None
                compute(session, project)

        return run

    def old_steady() -> None:
        with factory() as session:
            old_mask_counts(session, project_id)
            old_truth_counts(session, project_id)
            session.commit()

    def old_after_saves() -> None:
        with engine.begin() as connection:
            connection.execute(old_cache.delete())
        old_steady()

    # The new and old counts agree before anything is timed.
    with factory() as session:
        project = session.get(Project, project_id)
        assert project is not None
        balance = class_balance(session, project)
        masks = old_mask_counts(session, project_id)
        truth = old_truth_counts(session, project_id)
        session.commit()
    assert [c.labeled_pixels for c in balance.classes] == masks[:CLASSES].tolist()
    assert [c.validation_pixels for c in balance.classes] == truth[:CLASSES].tolist()
    get()  # warm: the token's last use is written on its first request
    results = {
        "get_new": _median_ms(get, repeats),
        **{f"part_{name}": _median_ms(part(compute), repeats) for name, compute in PARTS.items()},
        "balance_old_steady": _median_ms(old_steady, repeats),
        "balance_old_after_saves": _median_ms(old_after_saves, repeats),
    }
    results["balance_new"] = results["part_class_balance"]
    results["get_old_steady"] = (
        results["get_new"] - results["balance_new"] + results["balance_old_steady"]
    )
    results["get_old_after_saves"] = (
        results["get_new"] - results["balance_new"] + results["balance_old_after_saves"]
    )
    app.state.engine.dispose()
    return results


@contextmanager
def databases(skip_postgres: bool) -> Iterator[list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as directory:
        found = [("SQLite", f"sqlite:///{Path(directory) / 'bench.db'}")]
        if skip_postgres:
            yield found
            return
        with postgres_database("tessera_bench_dashboard") as url:
            yield [*found, ("PostgreSQL", url)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    print(
        f"{POOL} pool images with masks and ground truth, {VALIDATION} validation images with "
        f"ground truth, {WIDTH}x{HEIGHT}, {CLASSES} classes; median of {args.repeats} (ms)\n"
    )
    print(
        "| database | GET /dashboard now | old, steady | old, after saves | class balance now "
        "| old steady | old after saves | GET ratio old/now (steady, after saves) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    parts: list[str] = []
    with databases(args.skip_postgres) as urls:
        for name, url in urls:
            with tempfile.TemporaryDirectory() as data_dir:
                settings = Settings(
                    database_url=url,
                    data_dir=Path(data_dir),
                    secret_key="bench",
                    log_level="warning",
                )
                r = measure(settings, args.repeats)
            print(
                f"| {name} | {r['get_new']:.1f} | {r['get_old_steady']:.1f} | "
                f"{r['get_old_after_saves']:.1f} | {r['balance_new']:.1f} | "
                f"{r['balance_old_steady']:.1f} | {r['balance_old_after_saves']:.1f} | "
                f"{r['get_old_steady'] / r['get_new']:.1f}x, "
                f"{r['get_old_after_saves'] / r['get_new']:.1f}x |",
                flush=True,
            )
            parts.append(
                f"{name}: " + ", ".join(f"{part} {r['part_' + part]:.1f}" for part in PARTS)
            )
    print("\nEach part of the new GET alone (service call, own session; ms):")
    for line in parts:
        print(f"- {line}")
    print(
        f"\nload average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)"
    )


if __name__ == "__main__":
    main()
