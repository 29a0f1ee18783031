"""An installed wheel, no checkout: `tessera migrate` upgrades a fresh SQLite and a fresh
PostgreSQL database from the migrations shipped in the wheel, and `tessera serve` answers.

The wheel goes into a new virtual environment whose only other packages are this .venv's
(a .pth line, so the test stays offline and fast); it runs from a folder outside the
repository, so nothing can be imported from the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from core.migrate import alembic_config
from tests.services import free_port, postgres_database

ROOT = Path(__file__).resolve().parents[2]
# Not copied into the wheel's build folder: everything else is what a source archive has.
PIP = (sys.executable, "-m", "pip", "-q")
_NOT_SOURCES = (".git", ".venv", "frontend", "tests", "bench", "data", "docs", "build", "dist")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the built wheel installed; returns its bin/ folder."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    caches = shutil.ignore_patterns("*.egg-info", "__pycache__", "*.pyc", ".*_cache")

    def not_sources(folder: str, names: list[str]) -> set[str]:
        top = set(_NOT_SOURCES) if Path(folder) == ROOT else set()
        return top | set(caches(folder, names))

    shutil.copytree(ROOT, source, ignore=not_sources)
    wheels = work / "wheels"
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("tessera-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The dependencies come from this .venv; a .pth line adds a folder but runs none of its
    # .pth files, so the checkout's editable install stays out.
    Path(site, "tessera_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=300,
    )
    return venv / "bin"


def _env(database_url: str, data_dir: Path) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "PYTHON"))}
    return {
        **kept,
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_DATA_DIR": str(data_dir),
        "TESSERA_SECRET_KEY": "wheel-test-secret-" + "x" * 40,
    }


def _head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _database_revision(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return str(connection.scalar(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def test_the_wheel_carries_the_package_and_its_migrations(installed: Path, tmp_path: Path) -> None:
    found = subprocess.run(
        [str(installed / "python"), "-c", "import core, migrations; print(migrations.__file__)"],
        cwd=tmp_path,
        env=_env("sqlite://", tmp_path),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found).is_relative_to(installed.parent), found
    assert not Path(found).is_relative_to(ROOT), found
    versions = Path(found).parent / "versions"
    assert {p.name for p in versions.glob("0*.py")} == {
        p.name for p in (ROOT / "migrations" / "versions").glob("0*.py")
    }
    assert (Path(found).parent / "script.py.mako").is_file()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_database("tessera_wheel") as url:
        yield url


def test_migrate_from_the_wheel_brings_a_fresh_database_to_head(
    installed: Path, database_url: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(installed / "tessera"), "migrate"],
        cwd=tmp_path,
        env=_env(database_url, tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "is up to date" in result.stdout
    assert _database_revision(database_url) == _head_revision()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_serve_from_the_wheel_answers_health_and_the_ui_when_pointed_at_a_build(
    installed: Path, tmp_path: Path
) -> None:
    """The wheel holds no UI build: / says how to get one until TESSERA_FRONTEND_DIST_DIR
    names a built folder, which is then served."""
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>Tessera test build</title>")
    env = _env(f"sqlite:///{tmp_path / 'serve.db'}", tmp_path / "data")
    for dist_dir, expected in ((None, 503), (dist, 200)):
        port = free_port()
        run_env = env if dist_dir is None else {**env, "TESSERA_FRONTEND_DIST_DIR": str(dist_dir)}
        process = subprocess.Popen(
            [str(installed / "tessera"), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=run_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                try:
                    if _get(f"{base}/api/v1/health")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "tessera serve did not answer in 120 s"
                time.sleep(0.2)
            status, body = _get(f"{base}/")
            assert status == expected, body
            if expected == 503:
                assert "TESSERA_FRONTEND_DIST_DIR" in body
            else:
                assert "Tessera test build" in body
        finally:
            process.terminate()
            process.wait(timeout=30)
