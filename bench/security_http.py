"""What the HTTP hardening costs and holds, against a real ``tessera serve`` (SQLite).

1. Login: a failed login for an unknown e-mail against one for a real account (sequential,
   each from its own loopback address, under every limit): medians and their ratio, which
   should be near 1 (both run argon2).
2. 160 wrong passwords in parallel batches of 16 on one account: how many are checked (the
   limit, 10) and refused (429), and the median time of a refusal against a check.
3. Bodies: a 512 MB chunked mask PUT by a signed-in lead and a 256 MB chunked anonymous
   upload: bytes the client got out before the answer, time to the answer, and the server's
   RSS growth (sampled every 10 ms) against the body limit.

    .venv/bin/python bench/security_http.py
"""

from __future__ import annotations

import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import httpx

from backend.auth.service import create_user, issue_token
from backend.projects.schemas import ClassCreate, ProjectCreate
from backend.projects.service import create_project
from core.db import make_engine, make_session_factory
from core.models import TokenKind

SECRET = "bench-secret-key-bench-secret-key-0123"
PASSWORD = "correct horse battery"
BODY_LIMIT = 64 * 1024 * 1024
CHUNK = 256 * 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def start_server(database: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "TESSERA_DATABASE_URL": f"sqlite:///{database}",
        "TESSERA_DATA_DIR": str(database.parent),
        "TESSERA_SECRET_KEY": SECRET,
        "TESSERA_MAX_BODY_BYTES": str(BODY_LIMIT),
        "TESSERA_LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-c", "from tessera.cli import main; main()", "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(log.read_text())


def seed(database: Path) -> tuple[str, int]:
    """A lead with an API token and a project; returns (token, project id)."""
    engine = make_engine(f"sqlite:///{database}")
    with make_session_factory(engine)() as session:
        lead = create_user(session, "lead@example.org", PASSWORD)
        create_user(session, "known@example.org", PASSWORD)
        _, token = issue_token(session, lead, TokenKind.api, key=SECRET, name="bench")
        body = ProjectCreate(name="Bench", classes=[ClassCreate(name="road", colour="#808080")])
        project = create_project(session, lead, body)
        session.commit()
        project_id = project.id
    engine.dispose()
    return token, project_id


def timed_login(base: str, email: str, address: str) -> tuple[int, float]:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=base, transport=transport, timeout=60) as client:
        started = time.perf_counter()
        response = client.post("/api/v1/auth/login", json={"email": email, "password": "nope"})
        return response.status_code, time.perf_counter() - started


def chunked(
    port: int, method: str, path: str, headers: dict[str, str], total: int
) -> tuple[int, int, float]:
    """Sends up to ``total`` chunked bytes, stopping at the answer: (status, sent, seconds)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += "Transfer-Encoding: chunked\r\n\r\n"
    chunk = f"{CHUNK:x}\r\n".encode() + b"\x89" * CHUNK + b"\r\n"
    sent, pending, answer = 0, b"", b""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(head.encode())
        connection.setblocking(False)
        while True:
            want = [connection] if sent < total or pending else []
            readable, writable, _ = select.select([connection], want, [], 5.0)
            if readable or not (writable or want):
                break
            if writable:
                if not pending:
                    pending, sent = chunk, sent + CHUNK
                try:
                    pending = pending[connection.send(pending) :]
                except OSError:
                    break
        connection.setblocking(True)
        with suppress(OSError):
            answer = connection.recv(4096)
    elapsed = time.perf_counter() - started
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, sent, elapsed


def sample_peak(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss(pid))
        time.sleep(0.01)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tessera-security-bench-") as folder:
        database = Path(folder) / "tessera.db"
        process, base = start_server(database, Path(folder) / "server.log")
        try:
            token, project = seed(database)
            port = int(base.rsplit(":", 1)[1])
            print("| measure | value |\n|---|---|")

            known, unknown = [], []
            for n in range(20):
                address = f"127.0.3.{n + 1}"
                known.append(timed_login(base, "known@example.org", address)[1])
                unknown.append(timed_login(base, f"nobody{n}@example.org", address)[1])
            k, u = statistics.median(known), statistics.median(unknown)
            print(f"| failed login, real account (median of 20) | {k * 1000:.1f} ms |")
            print(f"| failed login, unknown e-mail (median of 20) | {u * 1000:.1f} ms |")
            print(f"| ratio unknown / real | {u / k:.2f} |")

            def guess(n: int) -> tuple[int, float]:
                return timed_login(base, "known@example.org", "127.0.4.1")

            with ThreadPoolExecutor(16) as pool:
                started = time.perf_counter()
                answers = list(pool.map(guess, range(160)))
                wall = time.perf_counter() - started
            counts = Counter(status for status, _ in answers)
            checked = statistics.median(t for s, t in answers if s == 401)
            refused = statistics.median(t for s, t in answers if s == 429)
            print(f"| 160 parallel guesses: 401 / 429 | {counts[401]} / {counts[429]} |")
            print(f"| 160 parallel guesses: wall time | {wall:.2f} s |")
            print(
                f"| median 401 (checked) / 429 (refused) | {checked * 1000:.0f} ms / "
                f"{refused * 1000:.0f} ms (ratio {refused / checked:.2f}) |"
            )

            for label, method, path, headers, total in (
                (
                    "512 MB chunked mask PUT (lead)",
                    "PUT",
                    f"/api/v1/projects/{project}/images/1/mask",
                    {
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "image/png",
                        "If-Match": '"0"',
                    },
                    512 * 1024 * 1024,
                ),
                (
                    "256 MB chunked upload (anonymous)",
                    "POST",
                    f"/api/v1/projects/{project}/images",
                    {"Content-Type": "multipart/form-data; boundary=x"},
                    256 * 1024 * 1024,
                ),
            ):
                before = rss(process.pid)
                peak, stop = [before], threading.Event()
                sampler = threading.Thread(target=sample_peak, args=(process.pid, stop, peak))
                sampler.start()
                status, sent, elapsed = chunked(port, method, path, headers, total)
                stop.set()
                sampler.join()
                growth = peak[0] - before
                print(
                    f"| {label}: answer | {status} after {sent / 2**20:.1f} MB sent, "
                    f"{elapsed:.2f} s |"
                )
                print(
                    f"| {label}: server RSS growth / body limit | {growth / 2**20:.1f} MB / "
                    f"{BODY_LIMIT / 2**20:.0f} MB (ratio {growth / BODY_LIMIT:.2f}) |"
                )
            print(f"| load average | {os.getloadavg()[0]:.2f} |")
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
