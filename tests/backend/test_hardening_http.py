"""HTTP hardening: bodies counted as they arrive (a real uvicorn server, raw sockets),
anonymous bodies refused unread, browser security headers, and the session cookie's
Origin check on uploads."""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.orm import Session, sessionmaker

from backend.app import create_app
from core.models import Image
from core.settings import Settings
from tests.backend.builders import PASSWORD, Account, World, png_bytes, rgb_image
from tests.backend.test_server import running_server

MAX_REQUEST = 4 * 1024 * 1024
MAX_BODY = 1024 * 1024
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Server:
    base: str
    port: int
    pid: int
    lead: Account
    project: int


def _server_pid(port: int) -> int:
    """The ``tessera serve`` child of this test process listening on ``port``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"serve" in cmdline and str(port).encode() in cmdline:
            return int(entry)
    raise AssertionError(f"no server process on port {port}")


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(settings: Settings, world: World, tmp_path: Path) -> Iterator[Server]:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    env = {
        "TESSERA_DATABASE_URL": settings.resolved_database_url,
        "TESSERA_SECRET_KEY": settings.secret_key,
        "TESSERA_MAX_REQUEST_BYTES": str(MAX_REQUEST),
        "TESSERA_MAX_BODY_BYTES": str(MAX_BODY),
        "TESSERA_BROKER_URL": settings.broker_url or "",
        "TESSERA_TASK_QUEUE": settings.task_queue,
    }
    with running_server(env, tmp_path / "server.log") as base:
        port = int(base.rsplit(":", 1)[1])
        yield Server(base, port, _server_pid(port), lead, project)


def _chunked_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body_bytes: int,
    prefix: bytes = b"",
) -> tuple[int, bytes, int]:
    """Sends a chunked body (``prefix``, then filler up to ``body_bytes``) over a raw socket,
    stopping as soon as the server answers; returns (status, response, bytes sent)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head += "Transfer-Encoding: chunked\r\n\r\n"
    if prefix:
        head_bytes = head.encode() + f"{len(prefix):x}\r\n".encode() + prefix + b"\r\n"
    else:
        head_bytes = head.encode()
    chunk = f"{CHUNK:x}\r\n".encode() + b"\x89" * CHUNK + b"\r\n"
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head_bytes)
        connection.setblocking(False)
        pending = b""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            want_write = [connection] if sent < body_bytes or pending else []
            readable, writable, _ = select.select([connection], want_write, [], 1.0)
            if readable:
                break
            if writable:
                if not pending:
                    pending = chunk
                    sent += CHUNK
                try:
                    pending = pending[connection.send(pending) :]
                except (BrokenPipeError, ConnectionResetError):
                    break
        connection.setblocking(True)
        try:
            while b"\r\n\r\n" not in answer or not _complete(answer):
                data = connection.recv(65536)
                if not data:
                    break
                answer += data
        except ConnectionResetError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    return status, answer, sent


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _image_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(sql_select(func.count()).select_from(Image)) or 0)


def test_a_chunked_mask_body_is_cut_at_the_limit_and_memory_stays_flat(
    server: Server, session_factory: sessionmaker[Session]
) -> None:
    before = _rss_bytes(server.pid)
    status, answer, sent = _chunked_request(
        server.port,
        "PUT",
        f"/api/v1/projects/{server.project}/images/1/mask",
        {**server.lead.headers, "Content-Type": "image/png", "If-Match": '"0"'},
        body_bytes=512 * 1024 * 1024,
    )
    growth = _rss_bytes(server.pid) - before
    assert status == 413, answer[:500]
    assert b"TESSERA_MAX_BODY_BYTES" in answer
    # The server stopped reading near the limit, not after 512 MB.
    assert sent < 64 * MAX_BODY
    assert growth < 64 * 1024 * 1024, growth


def test_a_chunked_upload_over_the_limit_is_refused_and_nothing_is_stored(
    server: Server, session_factory: sessionmaker[Session]
) -> None:
    boundary = "tessera-boundary"
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    status, answer, sent = _chunked_request(
        server.port,
        "POST",
        f"/api/v1/projects/{server.project}/images",
        {**server.lead.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        body_bytes=256 * 1024 * 1024,
        prefix=part,
    )
    assert status == 413, answer[:500]
    assert b"TESSERA_MAX_REQUEST_BYTES" in answer
    assert sent < 16 * MAX_REQUEST
    assert _image_count(session_factory) == 0


@pytest.mark.parametrize(
    "credential",
    [{}, {"Authorization": "Bearer tsr_not-a-real-token"}, {"Cookie": "tessera_session=forged"}],
    ids=["anonymous", "forged token", "forged cookie"],
)
def test_a_body_without_a_valid_credential_is_refused_before_it_is_read(
    server: Server, credential: dict[str, str]
) -> None:
    status, answer, sent = _chunked_request(
        server.port,
        "POST",
        f"/api/v1/projects/{server.project}/images",
        {
            **credential,
            "Content-Type": "multipart/form-data; boundary=x",
            "Origin": f"http://127.0.0.1:{server.port}",
        },
        body_bytes=64 * 1024 * 1024,
    )
    assert status == 401, answer[:500]
    # Answered before the server read the body: far less than the limit went out.
    assert sent < MAX_REQUEST


def test_a_declared_length_over_the_limit_is_refused_at_once(client: TestClient) -> None:
    response = client.put(
        "/api/v1/projects/1/images/1/mask",
        content=b"x" * 10,
        headers={"Content-Length": str(10**12), "Authorization": "Bearer x"},
    )
    assert response.status_code == 413


# --- browser security headers -------------------------------------------------------------


def _assert_browser_headers(response: object, csp_part: str) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert csp_part in headers["content-security-policy"]


@pytest.mark.parametrize(
    ("path", "csp_part"),
    [
        ("/api/v1/health", "sandbox"),
        ("/api/v1/users/me", "sandbox"),  # 401
        ("/api/v1/no-such-thing", "sandbox"),  # 404
        ("/api/v1/openapi.json", "sandbox"),
        ("/docs", "https://cdn.jsdelivr.net"),
        ("/", "script-src 'self'"),
        ("/projects/1/annotate", "script-src 'self'"),
    ],
)
def test_every_response_carries_the_browser_security_headers(
    client: TestClient, path: str, csp_part: str
) -> None:
    _assert_browser_headers(client.get(path), csp_part)


def test_a_server_error_carries_the_headers_too(tmp_path: Path) -> None:
    # A database that cannot be reached: the request fails inside the app with a 500.
    broken = Settings(
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/unreachable",
        data_dir=tmp_path,
    )
    with TestClient(create_app(broken), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/users/me", headers={"Authorization": "Bearer x"})
    assert response.status_code == 500
    _assert_browser_headers(response, "sandbox")


def test_uploaded_images_are_served_as_their_true_type_and_sandboxed(
    client: TestClient, world: World
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    # A PNG that claims to be a web page, with a script after its end chunk.
    polyglot = png_bytes(rgb_image(16, 12)) + b"<html><script>alert(1)</script></html>"
    uploaded = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", ("page.html", polyglot, "text/html"))],
        headers=lead.headers,
    )
    if uploaded.status_code != 201:  # refused outright is fine too
        assert uploaded.status_code in (413, 415, 422), uploaded.text
        return
    image_id = uploaded.json()["created"][0]["id"]
    served = client.get(f"/api/v1/projects/{project}/images/{image_id}/file", headers=lead.headers)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-disposition"].startswith('inline; filename="page.png"')
    _assert_browser_headers(served, "sandbox")


# --- Origin check on cookie-authenticated uploads -------------------------------------------


def _cookie_client(app: FastAPI, email: str) -> TestClient:
    browser = TestClient(app)
    login = browser.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return browser


def _upload(client: TestClient, project: int, headers: dict[str, str]) -> int:
    png = png_bytes(rgb_image(16, 12, seed=int(np.random.default_rng().integers(1 << 30))))
    response = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", ("a.png", png, "image/png"))],
        headers=headers,
    )
    return int(response.status_code)


def test_cookie_uploads_must_come_from_this_servers_pages(
    app: FastAPI, world: World, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    browser = _cookie_client(app, "lead@example.org")
    assert _upload(browser, project, {"Origin": "https://evil.example"}) == 403
    assert _upload(browser, project, {"Referer": "https://evil.example/page"}) == 403
    assert _upload(browser, project, {"Origin": "null"}) == 403  # a page hiding its origin
    assert _image_count(session_factory) == 0
    assert _upload(browser, project, {}) == 201  # no origin at all: a script, not a page
    assert _upload(browser, project, {"Origin": "http://testserver"}) == 201
    assert _upload(browser, project, {"Referer": "http://testserver/projects/1"}) == 201
    # Scripts with a token are not browsers: no Origin needed, a foreign one is ignored.
    script = TestClient(app)
    assert _upload(script, project, lead.headers) == 201
    assert _upload(script, project, {**lead.headers, "Origin": "https://evil.example"}) == 201


def test_other_cookie_requests_from_a_foreign_origin_are_refused(
    app: FastAPI, world: World
) -> None:
    world.user("lead@example.org")
    browser = _cookie_client(app, "lead@example.org")
    body = {"name": "Elsewhere", "classes": [{"name": "road", "colour": "#808080"}]}
    foreign = browser.post(
        "/api/v1/projects", json=body, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert "Cross-site" in foreign.json()["detail"]
    same = browser.post("/api/v1/projects", json=body, headers={"Origin": "http://testserver"})
    assert same.status_code == 201, same.text
