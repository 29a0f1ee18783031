"""``tessera serve`` as a real process: it migrates on start, and many annotators saving at
once through uvicorn's thread pool neither lose a label nor hit "database is locked"."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from core.migrate import alembic_config
from core.settings import DEFAULT_SECRET_KEY, Settings
from tests.backend.builders import Account, World, grid_labels, png_bytes
from tests.services import free_port

ANNOTATORS = 12
WIDTH, HEIGHT, CELL = 32, 24, 8


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def running_server(env_overrides: dict[str, str], log_path: Path) -> Iterator[str]:
    """``tessera serve`` in a subprocess on a free port; yields its base URL once healthy."""
    port = free_port()
    env = {**os.environ, **env_overrides}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from tessera.cli import main; main()",
                "serve",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            # Generous: on a busy 2-core machine importing the stack can take many seconds.
            deadline = time.monotonic() + 90
            while not _healthy(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise AssertionError(log_path.read_text())
                time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def server(settings: Settings, world: World, tmp_path: Path) -> Iterator[str]:
    env = {
        "TESSERA_DATABASE_URL": settings.resolved_database_url,
        "TESSERA_SECRET_KEY": settings.secret_key,
    }
    with running_server(env, tmp_path / "server.log") as base:
        yield base


def test_serve_creates_and_migrates_an_empty_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    env = {
        "TESSERA_DATA_DIR": str(data_dir),
        "TESSERA_DATABASE_URL": "",
        "TESSERA_SECRET_KEY": DEFAULT_SECRET_KEY,
    }
    with running_server(env, tmp_path / "server.log") as base:
        assert httpx.get(f"{base}/api/v1/projects").status_code == 401
    engine = create_engine(f"sqlite:///{data_dir / 'tessera.db'}")
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert version == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert "TESSERA_SECRET_KEY is the default" in (tmp_path / "server.log").read_text()


def _save(
    http: httpx.Client,
    base: str,
    project: int,
    image: int,
    account: Account,
    mask: np.ndarray,
    version: int,
) -> httpx.Response:
    return http.put(
        f"{base}/api/v1/projects/{project}/images/{image}/mask",
        content=png_bytes(mask),
        headers={**account.headers, "If-Match": f'"{version}"', "Content-Type": "image/png"},
    )


def test_many_annotators_saving_at_once_through_a_real_server(server: str, world: World) -> None:
    lead = world.user("lead@example.org")
    annotators = [world.user(f"a{i}@example.org") for i in range(ANNOTATORS)]
    project = world.project(lead, annotators=tuple(annotators))
    round_ = world.round(project)
    shared = world.image(project, width=WIDTH, height=HEIGHT)
    world.superpixel_grid(shared, cell=CELL)
    world.query(round_, shared, list(range(12)))
    own_images = []
    for _ in annotators:
        image = world.image(project, width=WIDTH, height=HEIGHT)
        world.superpixel_grid(image, cell=CELL)
        world.query(round_, image, list(range(12)))
        own_images.append(image)
    labels = grid_labels(WIDTH, HEIGHT, CELL)
    barrier = threading.Barrier(ANNOTATORS)
    statuses: list[list[int]] = [[] for _ in annotators]
    race: list[int] = [0] * ANNOTATORS

    def work(index: int) -> None:
        with httpx.Client(timeout=60) as http:
            mask = np.full((HEIGHT, WIDTH), 255, np.uint8)
            barrier.wait()
            # Everyone saves the shared image from version 0 at the same moment.
            race_mask = np.where(labels == index, index % 3, 255).astype(np.uint8)
            race[index] = _save(
                http, server, project, shared, annotators[index], race_mask, 0
            ).status_code
            # Then each saves their own image several times in a row.
            for step in range(4):
                mask[labels == step] = (index + step) % 3
                response = _save(
                    http, server, project, own_images[index], annotators[index], mask, step
                )
                statuses[index].append(response.status_code)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(ANNOTATORS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [[200] * 4] * ANNOTATORS
    assert sorted(race) == [200] + [412] * (ANNOTATORS - 1)
    winner = race.index(200)
    with httpx.Client() as http:
        history = http.get(
            f"{server}/api/v1/projects/{project}/images/{shared}/submissions",
            headers=lead.headers,
        ).json()
    assert [(h["version"], h["user_id"]) for h in history] == [(1, annotators[winner].id)]
