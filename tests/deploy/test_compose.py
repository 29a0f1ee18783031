"""docker-compose.yml: it parses, it says what production needs, and every service's own
command starts natively here against the local PostgreSQL and Redis (no Docker engine)."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.services import free_port, postgres_database

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def test_compose_has_every_production_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "flower"}
    for name in ("postgres", "redis", "api", "worker", "flower"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert services["migrate"]["restart"] == "no"
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and gpu["count"] == 1
    assert "TESSERA_GPU_WORKERS" in str(services["worker"]["deploy"]["replicas"])
    environment = services["api"]["environment"]
    assert environment["TESSERA_ENVIRONMENT"] == "production"
    assert environment["TESSERA_BROKER_URL"].startswith("redis://")
    assert environment["TESSERA_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert ":?" in environment["TESSERA_SECRET_KEY"], "the secret must be required, not defaulted"


def test_dockerfiles_keep_torch_out_of_the_api_image(compose: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        dockerfile = ROOT / compose["services"][name]["build"]["dockerfile"]
        assert dockerfile.is_file(), dockerfile
    api = (ROOT / compose["services"]["api"]["build"]["dockerfile"]).read_text()
    assert "torch" not in api.replace("without torch", "")
    assert "[worker]" not in api
    worker = (ROOT / compose["services"]["worker"]["build"]["dockerfile"]).read_text()
    assert "cuda" in worker.lower()
    assert (ROOT / ".env.example").is_file()


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}, from ``variables``."""

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        if name in variables:
            return variables[name]
        if operator == ":-":
            return argument or ""
        raise KeyError(f"{name} is required by docker-compose.yml: {argument}")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", replace, value).replace("$$", "$")


@pytest.fixture(scope="module")
def native_env(
    compose: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """The services' environment with the hosts `postgres` and `redis` pointing here."""
    with postgres_database("tessera_compose") as database:
        yield from _native_env(compose, database, tmp_path_factory.mktemp("compose-data"))


def _native_env(compose: dict[str, Any], database: str, data_dir: Path) -> Iterator[dict[str, str]]:
    variables = {
        "POSTGRES_PASSWORD": "unused-with-trust-auth",
        "TESSERA_SECRET_KEY": secrets.token_urlsafe(48),
        "TESSERA_DEVICE": "cpu",
        "TESSERA_API_WORKERS": "2",
    }
    environment = {
        key: _interpolate(str(value), variables)
        for key, value in compose["services"]["api"]["environment"].items()
    }
    environment["TESSERA_DATABASE_URL"] = database
    environment["TESSERA_BROKER_URL"] = "redis://127.0.0.1:6379/13"
    environment["TESSERA_TASK_QUEUE"] = f"tessera-compose-{uuid.uuid4().hex[:8]}"
    environment["TESSERA_DATA_DIR"] = str(data_dir)
    yield {**os.environ, **environment, "PATH": f"{BIN}:{os.environ['PATH']}", **variables}


def _command(
    service: dict[str, Any], env: dict[str, str], port: tuple[str, int] | None
) -> list[str]:
    words = [_interpolate(str(word), env) for word in service["command"]]
    if port is not None:  # the container's fixed port, moved to a free one here
        words = [w.replace(port[0], str(port[1])) for w in words]
    return words


def _wait_for(check: Any, process: subprocess.Popen[bytes], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{what} exited with {process.returncode}"
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} did not become healthy in {seconds} s")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as response:
        return bool(response.status == 200)


def _succeeds(command: list[str], env: dict[str, str]) -> bool:
    try:
        return subprocess.run(command, env=env, capture_output=True, timeout=90).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_each_service_command_starts_natively(
    compose: dict[str, Any], native_env: dict[str, str], tmp_path: Path
) -> None:
    services = compose["services"]
    migrate = subprocess.run(
        _command(services["migrate"], native_env, None),
        env=native_env,
        cwd=tmp_path,
        capture_output=True,
        timeout=180,
    )
    assert migrate.returncode == 0, migrate.stderr.decode()

    api_port, flower_port = free_port(), free_port()
    started: list[subprocess.Popen[bytes]] = []
    try:
        api = subprocess.Popen(
            _command(services["api"], native_env, ("8000", api_port)),
            env=native_env,
            cwd=tmp_path,
        )
        started.append(api)
        worker = subprocess.Popen(
            _command(services["worker"], native_env, None), env=native_env, cwd=tmp_path
        )
        started.append(worker)
        flower = subprocess.Popen(
            [
                *_command(services["flower"], native_env, ("5555", flower_port)),
                "--address=127.0.0.1",
            ],
            env=native_env,
            cwd=tmp_path,
        )
        started.append(flower)
        _wait_for(lambda: _http_ok(f"http://127.0.0.1:{api_port}/api/v1/health"), api, 120, "api")
        node = f"celery@{socket.gethostname()}"
        ping = shlex.split(
            services["worker"]["healthcheck"]["test"][1].replace("celery@$$HOSTNAME", node)
        )
        _wait_for(lambda: _succeeds(ping, native_env), worker, 300, "worker")
        _wait_for(
            lambda: _http_ok(f"http://127.0.0.1:{flower_port}/healthcheck"), flower, 90, "flower"
        )
    finally:
        for process in started:
            _stop(process)


def test_production_api_refuses_a_default_secret(native_env: dict[str, str]) -> None:
    for secret in ("change-me", "", "short"):
        result = subprocess.run(
            [str(BIN / "tessera"), "serve", "--port", str(free_port())],
            env={**native_env, "TESSERA_SECRET_KEY": secret},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert "refusing to start in production" in result.stderr
        assert "TESSERA_SECRET_KEY" in result.stderr
