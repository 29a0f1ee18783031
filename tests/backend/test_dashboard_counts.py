"""Per-class pixel counts kept at save and ground-truth time (``core.class_counts``) equal a
from-scratch recount of the stored PNGs after every kind of change, and the dashboard reads
them without writing or decoding anything."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from core.class_counts import class_delta, pixels_per_class
from core.db import make_engine, make_session_factory
from core.masks import UNLABELED, decode_stored_mask
from core.migrate import downgrade_database, upgrade_database
from core.models import (
    Annotation,
    Base,
    ClassPixelCount,
    CountSource,
    Image,
    Split,
)
from core.settings import Settings
from tests.backend.builders import Account, World, png_bytes
from tests.services import postgres_database

W, H, CELL = 32, 24, 8  # 4 x 3 grid superpixels of 64 pixels

Counts = dict[tuple[int, str, int], int]


def recount(session: Session) -> Counts:
    """(image, source, class) -> pixels, decoded from every stored mask and ground truth."""
    counts: Counts = {}
    sources = (
        (CountSource.mask, select(Image.id, Annotation.mask_png, Image.width, Image.height)),
        (
            CountSource.ground_truth,
            select(Image.id, Image.ground_truth_png, Image.width, Image.height),
        ),
    )
    for source, statement in sources:
        for image_id, png, width, height in session.execute(
            statement.join_from(Image, Annotation, isouter=True)
        ):
            if png is None:
                continue
            bins = np.bincount(decode_stored_mask(png, width, height).ravel(), minlength=256)
            for k in np.flatnonzero(bins[:UNLABELED]):
                counts[(image_id, source.value, int(k))] = int(bins[k])
    return counts


def kept(session: Session) -> Counts:
    """The maintained counts, classes at 0 left out."""
    return {
        (row.image_id, row.source.value, row.class_index): row.pixels
        for row in session.scalars(select(ClassPixelCount))
        if row.pixels != 0
    }


def assert_counts_match(factory: sessionmaker[Session]) -> Counts:
    with factory() as session:
        expected = recount(session)
        assert kept(session) == expected
        return expected


@dataclass
class Labeling:
    project: int
    lead: Account
    pool: list[int]
    validation: list[int]
    maps: dict[int, int]


@pytest.fixture
def labeling(world: World) -> Labeling:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    pool = [world.image(project, width=W, height=H) for _ in range(2)]
    maps = {image: world.superpixel_grid(image, cell=CELL) for image in pool}
    round_ = world.round(project)
    for image in pool:
        world.query(round_, image, list(range(12)))
    validation = [world.image(project, width=W, height=H, split=Split.validation) for _ in "ab"]
    return Labeling(project, lead, pool, validation, maps)


def _put(client: TestClient, setup: Labeling, image: int, mask: Any, version: int) -> int:
    response = client.put(
        f"/api/v1/projects/{setup.project}/images/{image}/mask",
        content=png_bytes(mask),
        headers={**setup.lead.headers, "If-Match": f'"{version}"', "Content-Type": "image/png"},
    )
    return int(response.status_code)


def _patch(
    client: TestClient,
    setup: Labeling,
    image: int,
    version: int,
    fills: list[list[int]],
    runs: list[list[int]] = [],  # noqa: B006 - never mutated
) -> int:
    response = client.patch(
        f"/api/v1/projects/{setup.project}/images/{image}/mask",
        json={"superpixel_map_id": setup.maps[image], "fills": fills, "runs": runs},
        headers={**setup.lead.headers, "If-Match": f'"{version}"'},
    )
    return int(response.status_code)


def test_counts_equal_a_recount_after_saves_erases_and_ground_truth_changes(
    labeling: Labeling, client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    setup = labeling
    first, second = setup.pool
    assert assert_counts_match(session_factory) == {}

    mask = np.full((H, W), UNLABELED, np.uint8)
    mask[:CELL, :CELL] = 0
    mask[CELL:, 2 * CELL :] = 1
    assert _put(client, setup, first, mask, version=0) == 200
    assert_counts_match(session_factory)

    # Fills relabel (0 -> 2), label new superpixels, erase one; runs brush inside others.
    assert _patch(client, setup, first, 1, [[0, 2], [1, 1], [6, UNLABELED]]) == 200
    assert_counts_match(session_factory)
    runs = [[CELL * W + 9, 4, 0], [(2 * CELL + 1) * W + 25, 3, UNLABELED]]
    assert _patch(client, setup, first, 2, [[4, 0]], runs) == 200
    assert_counts_match(session_factory)

    # The other image, from empty; then a PUT that clears it again.
    assert _patch(client, setup, second, 0, [[k, k % 3] for k in range(12)]) == 200
    assert_counts_match(session_factory)
    assert _put(client, setup, second, np.full((H, W), UNLABELED, np.uint8), version=1) == 200
    counts = assert_counts_match(session_factory)
    assert not any(image == second for image, _, _ in counts)

    # Refused saves change nothing: a stale version (412), a class the project lacks (422).
    before = assert_counts_match(session_factory)
    assert _patch(client, setup, first, 1, [[3, 1]]) == 412
    assert _patch(client, setup, first, 3, [[3, 7]]) == 422
    assert assert_counts_match(session_factory) == before

    # Ground truth: stored, replaced, deleted.
    truth = np.zeros((H, W), np.uint8)
    truth[:, W // 2 :] = 2
    truth[0, :5] = UNLABELED
    for image in setup.validation:
        world.ground_truth(image, truth)
    assert_counts_match(session_factory)
    world.ground_truth(setup.validation[0], np.ones((H, W), np.uint8))
    assert_counts_match(session_factory)
    url = f"/api/v1/projects/{setup.project}/images/{setup.validation[1]}/ground-truth"
    assert client.delete(url, headers=setup.lead.headers).status_code == 204
    counts = assert_counts_match(session_factory)
    assert {k: v for k, v in counts.items() if k[1] == "ground_truth"} == {
        (setup.validation[0], "ground_truth", 1): W * H
    }

    # The dashboard's class balance is these sums.
    balance = client.get(
        f"/api/v1/projects/{setup.project}/dashboard/class-balance", headers=setup.lead.headers
    ).json()
    labeled = {k: v for (_, source, k), v in counts.items() if source == "mask"}
    assert {c["index"]: c["labeled_pixels"] for c in balance["classes"]} == {
        k: labeled.get(k, 0) for k in range(3)
    }
    assert balance["validation_pixels"] == W * H
    assert balance["validation_images"] == 1


def test_deleting_an_image_deletes_its_counts(
    labeling: Labeling, client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    assert _patch(client, labeling, labeling.pool[0], 0, [[0, 1]]) == 200
    with session_factory() as session:
        image = session.get(Image, labeling.pool[0])
        assert image is not None
        session.delete(image)
        session.commit()
    assert assert_counts_match(session_factory) == {}


def _table_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(map(repr, row)) for row in connection.execute(table.select())),
            )
            for table in Base.metadata.sorted_tables
        }


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_dashboard_get_reads_counts_and_writes_nothing(
    labeling: Labeling, client: TestClient, world: World, app: FastAPI
) -> None:
    setup = labeling
    assert _patch(client, setup, setup.pool[0], 0, [[0, 1], [5, 2]]) == 200
    world.ground_truth(setup.validation[0], np.zeros((H, W), np.uint8))
    base = f"/api/v1/projects/{setup.project}/dashboard"
    # The token's last use is recorded on its first request, not on every one.
    assert client.get(f"{base}/budget", headers=setup.lead.headers).status_code == 200
    engine: Engine = app.state.engine
    before = _table_rows(engine)
    with recorded_statements(engine) as statements:
        for path in ("", "/class-balance"):
            assert client.get(base + path, headers=setup.lead.headers).status_code == 200
    assert _table_rows(engine) == before
    assert statements
    writes = [s for s in statements if re.match(r"\s*(INSERT|UPDATE|DELETE)", s, re.I)]
    assert writes == []
    # No PNG is read: ground truth appears only as "has one" (IS NOT NULL).
    for statement in statements:
        assert "mask_png" not in statement
        assert "ground_truth_png" not in re.sub(
            r"images\.ground_truth_png IS NOT NULL", "", statement
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_database("tessera_counts") as url:
        yield url


def test_migration_counts_the_masks_and_ground_truth_already_stored(
    empty_database: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=empty_database, data_dir=tmp_path, secret_key="test")
    upgrade_database(settings)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    world = World(factory, settings)
    project = world.project(world.user("lead@example.org"))
    images = [world.image(project, width=40, height=30) for _ in range(3)]
    rng = np.random.default_rng(0)
    try:
        downgrade_database(settings, "0011")
        with engine.begin() as connection:
            for index, image_id in enumerate(images[:2]):
                mask = rng.choice(np.array([0, 1, 2, UNLABELED], np.uint8), size=(30, 40))
                connection.execute(
                    update(Annotation)
                    .where(Annotation.image_id == image_id)
                    .values(mask_png=png_bytes(mask, "L"), version=1)
                )
                truth = np.full((30, 40), index, np.uint8)
                connection.execute(
                    update(Image)
                    .where(Image.id == image_id)
                    .values(ground_truth_png=png_bytes(truth, "L"))
                )
        upgrade_database(settings)
        counts = assert_counts_match(factory)
        assert {image for image, _, _ in counts} == set(images[:2])
        downgrade_database(settings, "0011")
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM annotation_class_counts")) == 0
    finally:
        engine.dispose()


def test_delta_of_rewritten_pixels_is_the_change_of_counts() -> None:
    before = np.array([0, 0, 1, UNLABELED, 2], np.uint8)
    after = np.array([0, 1, UNLABELED, 2, 2], np.uint8)
    delta = class_delta(before, after)
    assert delta[:3].tolist() == [-1, 0, 1] and delta[UNLABELED] == 0
    assert np.array_equal(pixels_per_class(before) + delta, pixels_per_class(after))
    with pytest.raises(ValueError, match="shape"):
        class_delta(before, after[:3])
    with pytest.raises(ValueError, match="uint8"):
        pixels_per_class(before.astype(np.int32))


def test_counts_stay_exact_under_concurrent_saves(
    labeling: Labeling, app: FastAPI, session_factory: sessionmaker[Session]
) -> None:
    """Four writers race on the same image (same versions: one wins, the others get 412 and
    retry on the new version) and on the other image; the counts equal a recount."""
    setup = labeling
    saves_each, writers = 5, 4
    barrier = threading.Barrier(writers)
    errors: list[str] = []

    def write(index: int) -> None:
        client = TestClient(app)
        rng = np.random.default_rng(index)
        image = setup.pool[index % 2]
        barrier.wait()
        done = 0
        while done < saves_each and not errors:
            mask = client.get(
                f"/api/v1/projects/{setup.project}/images/{image}/mask",
                headers=setup.lead.headers,
            )
            version = int(mask.headers["ETag"].strip('"'))
            ids = rng.choice(12, size=4, replace=False)
            fills = [[int(k), int(rng.choice([0, 1, 2, UNLABELED]))] for k in ids]
            status = _patch(client, setup, image, version, fills)
            if status == 200:
                done += 1
            elif status != 412:
                errors.append(f"writer {index}: {status}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert_counts_match(session_factory)
    with session_factory() as session:
        versions = dict(session.execute(select(Annotation.image_id, Annotation.version)).all())
    assert versions[setup.pool[0]] == versions[setup.pool[1]] == saves_each * writers // 2
