"""The tessera commands of the service: user add, import, export (against the test database)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.models import Image, User
from core.settings import Settings, get_settings
from tessera.cli import main
from tests.backend.builders import World, png_bytes, rgb_image


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    # Commands read TESSERA_* through get_settings(); point them at the test database.
    values = {
        "TESSERA_DATABASE_URL": settings.resolved_database_url,
        "TESSERA_DATA_DIR": str(settings.data_dir),
        "TESSERA_MAX_IMAGE_PIXELS": str(settings.max_image_pixels),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


def test_user_add_creates_a_user_who_can_log_in(
    env: dict[str, str], session_factory: sessionmaker[Session], client: object
) -> None:
    result = CliRunner().invoke(
        main, ["user", "add", "Root@Example.org", "--admin", "--password", "long enough"]
    )
    assert result.exit_code == 0, result.output
    assert "Created administrator root@example.org" in result.output
    with session_factory() as session:
        user = session.scalar(select(User).where(User.email == "root@example.org"))
        assert user is not None and user.is_admin
    again = CliRunner().invoke(
        main, ["user", "add", "root@example.org", "--password", "long enough"]
    )
    assert again.exit_code != 0
    assert "already exists" in again.output


def test_user_add_refuses_a_weak_password(
    env: dict[str, str], session_factory: sessionmaker[Session], client: object
) -> None:
    for weak in ("password", " " * 12, "root@example.org"):
        result = CliRunner().invoke(main, ["user", "add", "root@example.org", "--password", weak])
        assert result.exit_code != 0
        assert "password" in result.output.lower()
    with session_factory() as session:
        assert session.scalar(select(User).where(User.email == "root@example.org")) is None


def test_import_then_export(
    env: dict[str, str],
    world: World,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead, name="Fields")
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for index in range(3):
        (images / f"f{index}.png").write_bytes(png_bytes(rgb_image(20, 10, seed=index)))
        (masks / f"f{index}.png").write_bytes(png_bytes(np.full((10, 20), index, np.uint8)))
    (images / "notes.png").write_bytes(b"not an image")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("z.png", png_bytes(rgb_image(20, 10, seed=9)))
    (images / "more.zip").write_bytes(buffer.getvalue())

    result = CliRunner().invoke(
        main, ["import", str(images), "--project", "Fields", "--masks", str(masks)]
    )
    assert result.exit_code == 1, result.output  # one file refused
    assert "notes.png: not an image file" in result.output
    assert "4 images imported, 0 duplicates skipped, 3 ground-truth masks, 1 files refused" in (
        result.output
    )
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Image)) == 4
        with_truth = (
            select(func.count()).select_from(Image).where(Image.ground_truth_png.is_not(None))
        )
        assert session.scalar(with_truth) == 3

    again = CliRunner().invoke(main, ["import", str(images), "--project", str(project)])
    assert "0 images imported, 4 duplicates skipped" in again.output

    out = tmp_path / "export.zip"
    result = CliRunner().invoke(main, ["export", "--project", str(project), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = zipfile.ZipFile(out).namelist()
    assert "manifest.json" in names and "classes.json" in names
    coco = tmp_path / "coco.json"
    result = CliRunner().invoke(
        main, ["export", "--project", "Fields", "--out", str(coco), "--format", "coco"]
    )
    assert result.exit_code == 0, result.output
    assert coco.read_text().startswith("{")


def test_unknown_project_is_a_usage_error(
    env: dict[str, str], client: object, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, ["export", "--project", "nope", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "No project 'nope'" in result.output
