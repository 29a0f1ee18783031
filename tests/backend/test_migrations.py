"""Alembic upgrade from empty, downgrade to empty, upgrade again; schema matches the models."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from PIL import Image as PILImage
from sqlalchemy import (
    JSON,
    Connection,
    DateTime,
    Engine,
    LargeBinary,
    column,
    create_engine,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import table as table_clause
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.types import NullType, TypeEngine

from core.db import make_engine, make_session_factory
from core.masks import decode_stored_mask, stored_rows
from core.migrate import alembic_config, downgrade_database, upgrade_database
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


# The earliest revision whose tables hold every link a project's data has (0002 gave jobs
# their round): rows stored there must come through every later migration, both ways.
_OLD_REVISION = "0002"
_AT = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def _insert(connection: Connection, table: str, **values: Any) -> None:
    """One row by plain SQL, typed from the Python values (JSON, bytes, datetimes bind the
    same way on both databases) so that it matches the old revision's columns only."""

    def column_type(value: Any) -> TypeEngine[Any]:
        if isinstance(value, datetime):
            return DateTime(timezone=True)
        if isinstance(value, bytes):
            return LargeBinary()
        if isinstance(value, (list, dict)):
            return JSON()
        return NullType()

    columns = [column(name, column_type(value)) for name, value in values.items()]
    connection.execute(insert(table_clause(table, *columns)).values(**values))


def _fill_old_schema(connection: Connection) -> None:
    """A project with everything hanging off it, at ``_OLD_REVISION``'s schema."""
    mask = np.full((6, 8), 255, np.uint8)
    mask[:3] = 1
    _insert(connection, "users", id=1, email="lead@example.org", name="Lead",
            password_hash="x", is_admin=False, is_active=True, created_at=_AT)  # fmt: skip
    _insert(connection, "users", id=2, email="ann@example.org", name="Ann",
            password_hash="x", is_admin=False, is_active=True, created_at=_AT)  # fmt: skip
    _insert(connection, "api_tokens", id=1, user_id=2, kind="session", name="browser",
            token_hash="0" * 64, prefix="tsr_0000", created_at=_AT)  # fmt: skip
    _insert(connection, "projects", id=1, name="Streets", description="", created_at=_AT,
            superpixel_size=16, superpixel_algorithm="slic", strategy="dynamic",
            static_fraction=0.5, uncertainty="entropy", mc_samples=4, initial_images=1,
            images_per_round=1)  # fmt: skip
    _insert(connection, "memberships", project_id=1, user_id=1, role="lead", created_at=_AT)
    _insert(connection, "memberships", project_id=1, user_id=2, role="annotator",
            created_at=_AT)  # fmt: skip
    _insert(connection, "label_classes", id=1, project_id=1, index=1, name="road",
            colour="#804080")  # fmt: skip
    _insert(connection, "images", id=1, project_id=1, filename="a.png",
            content_type="image/png", width=8, height=6, sha256="a" * 64, split="pool",
            status="ready", created_at=_AT, data=png_bytes(np.zeros((6, 8, 3), np.uint8)),
            thumbnail_jpeg=b"jpeg", ground_truth_png=png_bytes(mask, "L"))  # fmt: skip
    _insert(connection, "rounds", id=1, project_id=1, number=1, strategy="dynamic",
            status="labeling", spent_pixels=0, spent_superpixels=0, spent_seconds=0.0,
            created_at=_AT)  # fmt: skip
    _insert(connection, "jobs", id=1, project_id=1, round_id=1, kind="round",
            status="succeeded", progress=1.0, message="", created_at=_AT)  # fmt: skip
    _insert(connection, "models", id=1, project_id=1, round_id=1, architecture="unet",
            checkpoint=b"weights", metrics={"miou": 0.5}, created_at=_AT)  # fmt: skip
    _insert(connection, "superpixel_maps", id=1, image_id=1, size=16, algorithm="slic",
            dtype="uint8", count=2, labels_zlib=b"labels", created_at=_AT)  # fmt: skip
    _insert(connection, "queries", id=1, round_id=1, image_id=1, superpixel_map_id=1,
            superpixel_ids=[0, 1], superpixel_scores=[0.9, 0.8], status="assigned",
            assignee_id=2, created_at=_AT)  # fmt: skip
    _insert(connection, "annotations", id=1, image_id=1, version=2,
            mask_png=png_bytes(mask, "L"), labeled_pixels=24, updated_at=_AT,
            updated_by_id=2)  # fmt: skip
    _insert(connection, "annotation_submissions", id=1, annotation_id=1, image_id=1,
            user_id=2, round_id=1, query_id=1, version=2, created_at=_AT, changed_pixels=24,
            changed_superpixels=1, superpixel_ids=[0], clicks=3, seconds=4.5)  # fmt: skip


def _links(engine: Engine, tables: dict[str, list[str]]) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's rows as (primary key..., foreign keys...): the rows and how they link."""
    links = {}
    with engine.connect() as connection:
        for name, keys in tables.items():
            columns: list[ColumnClause[Any]] = [column(key) for key in keys]
            query = select(*columns).select_from(table_clause(name)).order_by(*columns)
            links[name] = [tuple(row) for row in connection.execute(query).all()]
    return links


def _key_columns(engine: Engine) -> dict[str, list[str]]:
    inspector = inspect(engine)
    tables = {}
    for name in set(inspector.get_table_names()) - {"alembic_version"}:
        keys = inspector.get_pk_constraint(name)["constrained_columns"]
        for foreign_key in inspector.get_foreign_keys(name):
            keys += [c for c in foreign_key["constrained_columns"] if c not in keys]
        tables[name] = keys
    return tables


def test_upgrade_and_downgrade_keep_every_row_and_link(empty_database: str, tmp_path: Path) -> None:
    """Batch mode rebuilds tables on SQLite (copy, DROP, rename): a DROP with foreign keys on
    would cascade-delete every row that references the table. Rows of every kind stored at
    an early revision keep their ids and links through the upgrade to head and back."""
    settings = Settings(database_url=empty_database, data_dir=tmp_path)
    upgrade_database(settings, _OLD_REVISION)
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            _fill_old_schema(connection)
        tables = _key_columns(engine)
        stored = _links(engine, tables)
        assert all(len(rows) > 0 for rows in stored.values()), stored
        upgrade_database(settings)
        assert _links(engine, tables) == stored
        downgrade_database(settings, _OLD_REVISION)
        assert _links(engine, tables) == stored
    finally:
        engine.dispose()


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _sqlite_schema(engine: Engine) -> list[tuple[str, str, str | None]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT type, name, sql FROM sqlite_master ORDER BY name")
        return [(kind, name, sql) for kind, name, sql in rows]


def test_sqlite_upgrade_that_would_leave_a_dangling_key_writes_nothing(tmp_path: Path) -> None:
    """Foreign keys are off while migrations run on SQLite: the key check before the commit
    refuses the upgrade, and the whole run is one transaction, so no migration stays half done."""
    path = tmp_path / "dangling.db"
    settings = Settings(database_url=f"sqlite:///{path}", data_dir=tmp_path)
    upgrade_database(settings, _OLD_REVISION)
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.begin() as connection:
            _fill_old_schema(connection)
        old_schema = _sqlite_schema(engine)
        # A class of a deleted project: only a write with foreign keys off could leave it.
        with closing(sqlite3.connect(path)) as raw, raw:
            raw.execute(
                'INSERT INTO label_classes (id, project_id, "index", name, colour) '
                "VALUES (2, 99, 2, 'ghost', '#000000')"
            )
        with pytest.raises(RuntimeError, match=r"1 row\(s\) whose foreign key points nowhere"):
            upgrade_database(settings)
        assert _revision(engine) == _OLD_REVISION
        assert _sqlite_schema(engine) == old_schema  # not even 0003's new columns of users
    finally:
        engine.dispose()


def test_sqlite_connection_passed_to_alembic_keeps_rows_and_gets_its_keys_back(
    tmp_path: Path,
) -> None:
    """A caller's own connection (``config.attributes["connection"]``) is migrated the same
    way, and has foreign keys on again afterwards."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'own.db'}", data_dir=tmp_path)
    upgrade_database(settings, _OLD_REVISION)
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.begin() as connection:
            _fill_old_schema(connection)
        tables = _key_columns(engine)
        stored = _links(engine, tables)
        with engine.connect() as connection:
            config = alembic_config(settings.resolved_database_url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            assert not connection.in_transaction()
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert _links(engine, tables) == stored
    finally:
        engine.dispose()
