"""Alembic upgrade from empty, downgrade to empty, upgrade again; schema matches the models."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from PIL import Image as PILImage
from sqlalchemy import Engine, create_engine, inspect, select, text, update

from core.db import make_engine, make_session_factory
from core.masks import decode_stored_mask, stored_rows
from core.migrate import downgrade_database, upgrade_database
from core.models import Annotation, Base
from core.settings import Settings
from tests.backend.builders import World, png_bytes
from tests.services import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_database("tessera_migrate") as url:
        yield url


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database: str, tmp_path: Path) -> None:
    settings = Settings(database_url=empty_database, data_dir=tmp_path)
    upgrade_database(settings)
    assert _tables(empty_database) == set(Base.metadata.tables)
    downgrade_database(settings, "base")
    assert _tables(empty_database) == set()
    upgrade_database(settings)
    assert _tables(empty_database) == set(Base.metadata.tables)
    engine = create_engine(empty_database)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def _attstorage(engine: Engine) -> str | None:
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        return str(
            connection.scalar(
                text(
                    "SELECT attstorage FROM pg_attribute WHERE attname = 'mask_png' "
                    "AND attrelid = 'annotations'::regclass"
                )
            )
        )


def test_stored_masks_move_to_the_rows_layout_and_back(empty_database: str, tmp_path: Path) -> None:
    """0009 re-encodes every stored mask (pixels unchanged) in the layout saves update in
    place; its downgrade writes Pillow's PNGs back."""
    settings = Settings(database_url=empty_database, data_dir=tmp_path, secret_key="test")
    upgrade_database(settings)
    engine = make_engine(settings.resolved_database_url)
    world = World(make_session_factory(engine), settings)
    project = world.project(world.user("lead@example.org"))
    images = [world.image(project, width=40, height=30) for _ in range(3)]
    masks = {}
    for index, image_id in enumerate(images[:2]):
        mask = np.full((30, 40), 255, np.uint8)
        mask[index : 10 + index, 5:25] = index
        masks[image_id] = mask
    try:
        downgrade_database(settings, "0008")
        with engine.begin() as connection:
            for image_id, mask in masks.items():
                connection.execute(
                    update(Annotation)
                    .where(Annotation.image_id == image_id)
                    .values(mask_png=png_bytes(mask, "L"), version=1)
                )
        upgrade_database(settings)
        assert _attstorage(engine) in (None, "e")
        with engine.connect() as connection:
            stored = dict(
                connection.execute(select(Annotation.image_id, Annotation.mask_png)).all()
            )
        assert stored[images[2]] is None  # never saved: stays NULL
        for image_id, mask in masks.items():
            png = stored[image_id]
            assert png is not None and stored_rows(png, 40, 30) is not None
            np.testing.assert_array_equal(decode_stored_mask(png, 40, 30), mask)
        downgrade_database(settings, "0008")
        assert _attstorage(engine) in (None, "x")
        with engine.connect() as connection:
            stored = dict(
                connection.execute(select(Annotation.image_id, Annotation.mask_png)).all()
            )
        for image_id, mask in masks.items():
            png = stored[image_id]
            assert png is not None and stored_rows(png, 40, 30) is None  # Pillow's filters
            with PILImage.open(io.BytesIO(png)) as decoded:
                np.testing.assert_array_equal(np.asarray(decoded), mask)
    finally:
        engine.dispose()
