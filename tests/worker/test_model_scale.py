"""Images larger than TESSERA_MODEL_MAX_PIXELS reach the model downscaled (issue 13): the
scorer, the training masks and the feature cache work at the model's shape, while the
pixels a query would pay for are still counted at full size."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_session_factory
from core.migrate import upgrade_database
from core.models import Image, RoundStatus
from core.settings import Settings
from tests.backend.builders import World
from tests.worker.test_data_path import _pool, _scorer
from worker.data import image_rgb, model_shape, unpack_floats
from worker.engine.model import ModelConfig, build_model
from worker.feature_cache import FeatureCache
from worker.tasks.train import labeled_pool_images

Factory = sessionmaker[Session]
# The builder's images are 32x24; the model sees them at 16x12.
MAX_PIXELS = 192


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[Factory, World]]:
    url = f"sqlite:///{tmp_path / 'scale.db'}"
    settings = Settings(database_url=url, data_dir=tmp_path, secret_key="model-scale")
    upgrade_database(settings)
    engine = make_engine(url)
    try:
        yield make_session_factory(engine), World(make_session_factory(engine), settings)
    finally:
        engine.dispose()


def test_a_large_image_is_scored_at_the_model_shape_and_paid_at_full_size(
    database: tuple[Factory, World],
) -> None:
    factory, world = database
    project_id, ids = _pool(world, 3)
    round_id = world.round(project_id, status=RoundStatus.scoring)
    full = next(_scorer(factory, project_id, round_id, prefetch=False).batches(ids))
    small_scorer = _scorer(factory, project_id, round_id, prefetch=False, max_pixels=MAX_PIXELS)
    small = next(small_scorer.batches(ids))

    assert full.superpixels[0].shape == (24, 32)
    assert [labels.shape for labels in small.superpixels] == [(12, 16)] * 3
    assert [known.shape for known in small.known] == [(12, 16)] * 3
    assert [pixels.shape for pixels in small.pixels or []] == [(12, 16, 3)] * 3
    # The model's superpixels are the full map sampled at pixel centres.
    np.testing.assert_array_equal(small.superpixels[0], full.superpixels[0][1::2, 1::2])
    # Pixels to pay for stay full-size counts: the first image's top 8 rows are labeled.
    for got, expected in zip(small.unlabeled, full.unlabeled, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert int(small.unlabeled[0].sum()) == 32 * 16
    assert int(small.unlabeled[1].sum()) == 32 * 24

    rows = small_scorer.score(small)
    assert len(rows) == 3
    for position, row in enumerate(rows):
        assert PILImage.open(io.BytesIO(row.uncertainty_png)).size == (16, 12)
        scores = unpack_floats(row.superpixel_scores)
        assert len(scores) == small.map_counts[position] == 12  # 8 px cells on 32x24
        # Fully labeled cells (the first image's top row of cells) get no score.
        unscored = 4 if position == 0 else 0
        assert int(np.isnan(scores).sum()) == unscored
        assert np.isfinite(scores[unscored:]).all()


def test_training_masks_and_pixels_come_at_the_model_shape(database: tuple[Factory, World]) -> None:
    factory, world = database
    project_id, ids = _pool(world, 3)
    with factory() as session:
        images, masks = labeled_pool_images(session, project_id, MAX_PIXELS)
        assert [image.id for image in images] == [ids[0]]
        [mask] = masks
        assert mask.shape == (12, 16)
        assert (mask[:4] == 1).all() and (mask[4:] == 255).all()
        assert image_rgb(session, ids[0], MAX_PIXELS).shape == (12, 16, 3)
        # Under the limit nothing changes.
        _, [unchanged] = labeled_pool_images(session, project_id, 10_000)
        assert unchanged.shape == (24, 32)


def test_cached_features_are_of_the_model_shape_and_keyed_by_it(
    database: tuple[Factory, World],
) -> None:
    factory, world = database
    _, ids = _pool(world, 1)
    model = build_model(ModelConfig(num_classes=3, kind="efficientnet_lite0", decoder_channels=8))
    with factory() as session:
        image = session.get(Image, ids[0])
        assert image is not None
        assert model_shape(image, MAX_PIXELS) == (12, 16)
        small = FeatureCache(model, torch.device("cpu"), max_pixels=MAX_PIXELS)
        full = FeatureCache(model, torch.device("cpu"))
        assert small.fingerprint(image) != full.fingerprint(image)
        [encoded] = small.features(session, [image])
        assert small.misses == 1
        # The finest map of a 16x12 input is smaller than that of the 32x24 image.
        [encoded_full] = full.features(session, [image])
        assert encoded.features[0].shape[-2:] < encoded_full.features[0].shape[-2:]
        # The other size's row was replaced (one fingerprint per image), so asking again
        # at the model shape computes again rather than reading a wrong-size map.
        assert small.cached(session, [image]) == [None]
