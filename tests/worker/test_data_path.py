"""The worker's data path on a real PostgreSQL database: scoring batches read with a few
queries and prefetched in a background thread (same scores with the read-ahead on or off,
and as the engine gives on arrays decoded one by one), only current superpixel maps used,
training inputs read lazily under a memory budget, and the random first round decoding
only the images it picks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory
from core.masks import encode_mask_png
from core.migrate import upgrade_database
from core.models import Annotation, Image, ImageStatus, Project, Round, RoundStatus
from core.settings import Settings
from core.superpixel_maps import current_map
from tests.backend.builders import World
from tests.services import postgres_database
from worker.data import image_rgb, superpixel_labels
from worker.datasets import LazyImages
from worker.engine.model import ModelConfig, build_model
from worker.engine.scoring import max_pixel_score, score_images
from worker.engine.strategies import plan_round
from worker.prefetch import prefetched
from worker.tasks.query import UnscoredCandidates, plan_queries
from worker.tasks.score import PoolScorer, ScoringOptions

Factory = sessionmaker[Session]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Factory, World]]:
    with postgres_database("tessera_data_path") as url:
        settings = Settings(database_url=url, data_dir=tmp_path, secret_key="data-path")
        upgrade_database(settings)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        try:
            yield factory, World(factory, settings)
        finally:
            engine.dispose()


def _pool(world: World, images: int, **settings: Any) -> tuple[int, list[int]]:
    """A project with ``images`` ready pool images of 32x24 with grid maps (cell 8); every
    third image has its top rows labeled."""
    lead = world.user("lead@example.org")
    project_id = world.project(lead, superpixel_size=8, **settings)
    ids = [world.image(project_id) for _ in range(images)]
    for image_id in ids:
        world.superpixel_grid(image_id, cell=8)
    with world.factory() as session:
        for position, image_id in enumerate(ids):
            image = session.get(Image, image_id)
            assert image is not None
            image.status = ImageStatus.ready
            if position % 3 == 0:
                mask = np.full((image.height, image.width), 255, np.uint8)
                mask[:8] = 1
                annotation = session.scalar(
                    select(Annotation).where(Annotation.image_id == image_id)
                )
                assert annotation is not None
                annotation.mask_png = encode_mask_png(mask)
                annotation.labeled_pixels = int((mask != 255).sum())
                annotation.version = 1
        session.commit()
    return project_id, ids


def _scorer(
    factory: Factory, project_id: int, round_id: int, prefetch: bool, max_pixels: int | None = None
) -> PoolScorer:
    torch.manual_seed(0)
    model = build_model(ModelConfig(num_classes=3, width=4, depth=2))
    return PoolScorer(
        factory,
        project_id,
        round_id,
        model,
        torch.device("cpu"),
        "entropy",
        4,
        max_pixel_score("entropy", 3),
        ScoringOptions(),
        None,
        batch_size=3,
        prefetch=prefetch,
        max_pixels=max_pixels,
    )


def _score_all(scorer: PoolScorer, image_ids: list[int]) -> dict[int, tuple[Any, ...]]:
    rows = [row for batch in scorer.batches(image_ids) for row in scorer.score(batch)]
    return {
        row.image_id: (
            row.superpixel_map_id,
            row.image_score,
            row.superpixel_scores,
            row.unlabeled_pixels,
            row.superpixel_classes,
            row.uncertainty_png,
        )
        for row in rows
    }


def test_scoring_gives_the_same_scores_with_the_read_ahead_on_or_off(
    database: tuple[Factory, World],
) -> None:
    factory, world = database
    project_id, ids = _pool(world, 8)
    round_id = world.round(project_id, status=RoundStatus.scoring)
    on = _score_all(_scorer(factory, project_id, round_id, prefetch=True), ids)
    off = _score_all(_scorer(factory, project_id, round_id, prefetch=False), ids)
    assert sorted(on) == ids
    assert on == off
    # MC dropout drew different masks for different images: the scores are not all equal.
    assert len({scores for _, _, scores, *_ in on.values()}) > 1


def test_batched_reads_score_as_the_engine_does_on_images_read_one_by_one(
    database: tuple[Factory, World],
) -> None:
    factory, world = database
    project_id, ids = _pool(world, 5)
    round_id = world.round(project_id, status=RoundStatus.scoring)
    scorer = _scorer(factory, project_id, round_id, prefetch=True)
    batch = next(scorer.batches(ids))
    with factory() as session:
        pixels = [image_rgb(session, image_id) for image_id in ids[:3]]
        maps = []
        for image_id in ids[:3]:
            image = session.get(Image, image_id)
            assert image is not None
            project = session.get(Project, project_id)
            assert project is not None
            superpixel_map = current_map(session, image_id, project)
            assert superpixel_map is not None
            maps.append(superpixel_labels(session, superpixel_map, image))
    assert [image.id for image in batch.images] == ids[:3]
    for got, expected in zip(batch.pixels or [], pixels, strict=True):
        np.testing.assert_array_equal(got, expected)
    for got_map, expected_map in zip(batch.superpixels, maps, strict=True):
        np.testing.assert_array_equal(got_map, expected_map)
    # The first image's top 8 rows are labeled (and only those are known).
    assert batch.known[0][:8].all() and not batch.known[0][8:].any()
    assert not batch.known[1].any()
    torch.manual_seed(round_id * 1_000_003 + ids[0])
    expected_scores = list(
        score_images(
            scorer.model,
            pixels,
            maps,
            batch.known,
            method="entropy",
            samples=4,
            device=torch.device("cpu"),
            batch_size=3,
        )
    )
    torch.manual_seed(round_id * 1_000_003 + ids[0])
    rows = scorer.score(batch)
    for row, result in zip(rows, expected_scores, strict=True):
        assert row.image_score == pytest.approx(result.image_score)


def test_images_without_a_current_map_are_not_scored(database: tuple[Factory, World]) -> None:
    factory, world = database
    project_id, ids = _pool(world, 4)
    round_id = world.round(project_id, status=RoundStatus.scoring)
    with factory() as session:
        project = session.get(Project, project_id)
        assert project is not None
        project.superpixel_size = 16  # only one image gets a map of the new size
        session.commit()
    world.superpixel_grid(ids[2], cell=16)
    scored = _score_all(_scorer(factory, project_id, round_id, prefetch=True), ids)
    assert list(scored) == [ids[2]]


def test_the_random_first_round_decodes_only_the_images_it_picks(
    database: tuple[Factory, World],
) -> None:
    factory, world = database
    project_id, _ = _pool(world, 24, initial_images=3)
    round_id = world.round(project_id, status=RoundStatus.querying)
    with factory() as session:
        project, round_ = session.get(Project, project_id), session.get(Round, round_id)
        assert project is not None and round_ is not None
        candidates, plan = plan_queries(session, project, round_, initial=True)
        assert isinstance(candidates, UnscoredCandidates)
        assert len(candidates) == 24 and len(plan) == 3
        assert candidates.decoded == len(plan)
        # Decoding every candidate first (as before) plans the same images and superpixels.
        eager = list(candidates)
        assert candidates.decoded == 24
        expected = plan_round(
            "random_images",
            np.zeros(len(eager)),
            [c.superpixel_scores for c in eager],
            [c.unlabeled_counts for c in eager],
            3,
            np.random.default_rng([project_id, round_.number]),
            static_fraction=project.static_fraction,
        )
    assert [(p.image_index, p.superpixel_ids.tolist()) for p in plan] == [
        (p.image_index, p.superpixel_ids.tolist()) for p in expected
    ]


def test_lazy_images_read_when_indexed_and_keep_at_most_their_budget() -> None:
    reads: list[int] = []

    def load(image_id: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
        reads.append(image_id)
        return np.full((10, 10), image_id, np.uint8)  # 100 bytes each

    images = LazyImages([7, 8, 9], load, lambda a: a.nbytes, cache_bytes=250)
    assert reads == [] and len(images) == 3
    assert int(images[1][0, 0]) == 8 and int(images[-1][0, 0]) == 9
    assert int(images[1][0, 0]) == 8  # kept: not read again
    assert reads == [8, 9]
    images[0]  # a third item passes the budget: the least recently used (9) goes
    assert images.kept_bytes <= 250
    images[1]
    images[2]
    assert reads == [8, 9, 7, 9]
    assert [int(a[0, 0]) for a in images] == [7, 8, 9]
    with pytest.raises(IndexError):
        images[3]


def test_prefetch_yields_in_order_and_loads_ahead_in_another_thread() -> None:
    main = threading.get_ident()
    started: list[int] = []
    second_started = threading.Event()

    def load(value: int) -> Callable[[], tuple[int, int]]:
        def run() -> tuple[int, int]:
            started.append(value)
            if value == 1:
                second_started.set()
            return value, threading.get_ident()

        return run

    results = prefetched([load(i) for i in range(5)], depth=1)
    first = next(results)
    # The next load starts without being asked for (a lazy iterator would never start it).
    assert second_started.wait(timeout=10)
    assert first[0] == 0 and started[:2] == [0, 1]
    rest = list(results)
    assert [value for value, _ in [first, *rest]] == [0, 1, 2, 3, 4]
    assert all(thread != main for _, thread in [first, *rest])
    inline = list(prefetched([load(i) for i in range(3)], depth=0))
    assert [thread for _, thread in inline] == [main] * 3


def test_prefetch_raises_a_loads_error_where_its_result_is_taken() -> None:
    def fail() -> int:
        raise ValueError("image 3 is gone")

    results = prefetched([lambda: 1, fail, lambda: 3], depth=1)
    assert next(results) == 1
    with pytest.raises(ValueError, match="image 3 is gone"):
        next(results)
