"""End-to-end fixtures: the built front end, a real ``tessera serve`` on a fresh database, and
Debian's Chromium driven by Playwright.

The database is PostgreSQL by default; ``TESSERA_E2E_DATABASE=sqlite`` uses a SQLite file.
Screenshots go to ``artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.e2e.server import (
    ADMIN_EMAIL,
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    Server,
    fresh_database,
    login,
    running_server,
)

ARTIFACTS = REPO / "artifacts"
FRONTEND = REPO / "frontend"


def _newest_source_mtime() -> float:
    paths = [FRONTEND / "index.html", FRONTEND / "package-lock.json", FRONTEND / "vite.config.ts"]
    paths += list((FRONTEND / "src").rglob("*"))
    return max(path.stat().st_mtime for path in paths if path.is_file())


@pytest.fixture(scope="session")
def frontend_dist() -> Path:
    """frontend/dist, rebuilt with scripts/frontend.sh when missing or older than the sources."""
    index = FRONTEND / "dist" / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source_mtime():
        subprocess.run(["bash", str(REPO / "scripts" / "frontend.sh")], check=True, timeout=600)
    return index.parent


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, frontend_dist: Path) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("e2e-server")
    kind = os.environ.get("TESSERA_E2E_DATABASE", "postgresql")
    with (
        fresh_database(kind, directory) as database_url,
        running_server(database_url, directory, directory / "server.log") as running,
    ):
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            "Debian's chromium is missing: apt-get update && apt-get install -y chromium "
            "chromium-driver (scripts/setup.sh does it)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # Playwright's wait_for_function evaluates its predicate with eval() inside the page,
    # which the UI's Content-Security-Policy refuses; test_content_security_policy.py runs
    # the UI with the policy enforced.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    client = login(server, ADMIN_EMAIL)
    yield client
    client.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
