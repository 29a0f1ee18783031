"""The real ``tessera serve`` in a subprocess, an HTTP client that acts as a lead or admin, and
how to launch Debian's Chromium. Used by the end-to-end tests and by ``bench/browser_*.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.services import free_port
from tests.services import fresh_database as shared_fresh_database

REPO = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@e2e.example.org"
PASSWORD = "correct horse battery"
SECRET_KEY = "e2e-secret-key-not-for-production"

CHROMIUM = Path("/usr/bin/chromium")
# Playwright's own browser download cannot work offline; Debian's chromium with these flags can.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextmanager
def fresh_database(kind: str, directory: Path) -> Iterator[str]:
    """A new empty database: a SQLite file in ``directory``, or a PostgreSQL database."""
    with shared_fresh_database(kind, directory, "tessera_e2e") as url:
        yield url


@dataclass(frozen=True)
class Server:
    base_url: str
    database_url: str
    env: dict[str, str]

    @property
    def api(self) -> str:
        return f"{self.base_url}/api/v1"


def process_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without inherited ``TESSERA_*`` settings, plus ``env``: the
    server under test must not reach a developer's broker or database by accident."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    return {**inherited, **env}


def tessera(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs the ``tessera`` CLI (as ``python -m``-style entry point) and checks it succeeded."""
    return subprocess.run(
        [sys.executable, "-c", "from tessera.cli import main; main()", *args],
        env=process_env(env),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )


@contextmanager
def running_server(
    database_url: str, data_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Creates the admin with ``tessera user add``, then ``tessera serve`` on a free port
    (``extra_env``: more ``TESSERA_*`` settings, e.g. a bench's other built front end).

    Jobs the server sends (superpixel ingest after uploads) go to the embedded broker under
    ``data_dir``, where no worker listens: the seeded round stands in for the worker's.
    """
    env = {
        "TESSERA_DATABASE_URL": database_url,
        "TESSERA_DATA_DIR": str(data_dir),
        "TESSERA_SECRET_KEY": SECRET_KEY,
        "TESSERA_LOG_LEVEL": "warning",
        "TESSERA_NEW_USER_PASSWORD": PASSWORD,
        **(extra_env or {}),
    }
    tessera(["user", "add", ADMIN_EMAIL, "--admin", "--name", "Admin"], env)
    port = free_port()
    with log_path.open("wb") as log:
        command = [sys.executable, "-c", "from tessera.cli import main; main()"]
        process = subprocess.Popen(
            [*command, "serve", "--port", str(port)],
            env=process_env(env),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tessera serve did not start:\n{log_path.read_text()}")
                time.sleep(0.1)
            yield Server(base, database_url, env)
        finally:
            process.terminate()
            process.wait(timeout=15)


def login(server: Server, email: str, password: str = PASSWORD) -> httpx.Client:
    """An HTTP client holding a browser-style session cookie for ``email``."""
    client = httpx.Client(base_url=server.api, timeout=60)
    response = client.post("/auth/login", json={"email": email, "password": password})
    response.raise_for_status()
    return client
