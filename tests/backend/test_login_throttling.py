"""Login throttling against guessing: atomic under parallel requests (a real ``tessera serve``),
per client and per account, the same for unknown e-mails, and no way to lock an owner out."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from core.models import LoginThrottle
from core.models.base import utc_now
from core.settings import Settings
from tests.backend.builders import PASSWORD, World
from tests.backend.test_server import running_server

LOGIN = "/api/v1/auth/login"
GUESSES = 160
BATCH = 16


@pytest.fixture
def server(settings: Settings, world: World, tmp_path: Path) -> Iterator[str]:
    env = {
        "TESSERA_DATABASE_URL": settings.resolved_database_url,
        "TESSERA_SECRET_KEY": settings.secret_key,
        "TESSERA_LOGIN_MAX_FAILURES": "10",
        "TESSERA_LOGIN_CLIENT_MAX_FAILURES": "1000",
    }
    with running_server(env, tmp_path / "server.log") as base:
        yield base


def _guess_in_parallel(base: str, email: str, local_address: str = "127.0.0.1") -> list[int]:
    """GUESSES wrong passwords for ``email``, BATCH at a time in parallel; the statuses."""
    transport = httpx.HTTPTransport(local_address=local_address)
    with httpx.Client(base_url=base, transport=transport, timeout=60) as client:

        def guess(n: int) -> httpx.Response:
            return client.post(LOGIN, json={"email": email, "password": f"guess-{n}"})

        statuses: list[int] = []
        with ThreadPoolExecutor(BATCH) as pool:
            for start in range(0, GUESSES, BATCH):
                responses = list(pool.map(guess, range(start, start + BATCH)))
                for response in responses:
                    if response.status_code == 429:
                        assert int(response.headers["retry-after"]) > 0
                statuses.extend(response.status_code for response in responses)
        return statuses


def test_parallel_guesses_get_exactly_the_limit_checked_then_429(server: str, world: World) -> None:
    world.user("target@example.org")
    statuses = _guess_in_parallel(server, "target@example.org")
    # Every attempt is counted before its password is checked: exactly 10 get through.
    assert Counter(statuses) == {401: 10, 429: GUESSES - 10}
    # The owner, from another address, is not locked out by the attacker.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server, transport=transport) as owner:
        good = owner.post(LOGIN, json={"email": "target@example.org", "password": PASSWORD})
        assert good.status_code == 200, good.text
    # The attacker's client stays locked, even with the right password.
    right = httpx.post(
        f"{server}{LOGIN}", json={"email": "target@example.org", "password": PASSWORD}
    )
    assert right.status_code == 429


def test_unknown_email_is_answered_like_a_known_one(server: str, world: World) -> None:
    world.user("known@example.org")
    known = _guess_in_parallel(server, "known@example.org", "127.0.0.3")
    unknown = _guess_in_parallel(server, "nobody@example.org", "127.0.0.4")
    assert Counter(known) == Counter(unknown) == {401: 10, 429: GUESSES - 10}
    bodies: dict[str, tuple[int, str]] = {}
    for email, address in (("known@example.org", "127.0.0.3"), ("nobody@example.org", "127.0.0.4")):
        transport = httpx.HTTPTransport(local_address=address)
        with httpx.Client(base_url=server, transport=transport) as client:
            locked = client.post(LOGIN, json={"email": email, "password": "again"})
            bodies[email] = (locked.status_code, locked.json()["detail"].split(";")[0])
    assert bodies["known@example.org"] == bodies["nobody@example.org"]


def _timed_failure(client: httpx.Client, email: str) -> float:
    started = time.perf_counter()
    response = client.post(LOGIN, json={"email": email, "password": "wrong password"})
    assert response.status_code == 401
    return time.perf_counter() - started


def test_unknown_email_costs_the_same_password_check(server: str, world: World) -> None:
    world.user("known@example.org")
    known_times: list[float] = []
    unknown_times: list[float] = []
    # Interleaved, from fresh addresses, so both see the same load and no lock.
    for n in range(6):
        transport = httpx.HTTPTransport(local_address=f"127.0.1.{n + 1}")
        with httpx.Client(base_url=server, transport=transport, timeout=60) as client:
            known_times.append(_timed_failure(client, "known@example.org"))
            unknown_times.append(_timed_failure(client, "nobody@example.org"))
    ratio = statistics.median(unknown_times) / statistics.median(known_times)
    # Without the dummy hash an unknown e-mail answers many times faster than argon2.
    assert 0.33 < ratio < 3, (known_times, unknown_times)


def _with(app: FastAPI, **limits: int) -> None:
    app.state.settings = app.state.settings.model_copy(update=limits)


def test_one_client_spraying_many_accounts_is_stopped(app: FastAPI, world: World) -> None:
    _with(app, login_client_max_failures=5, login_max_failures=3)
    world.user("victim@example.org")
    sprayer = TestClient(app, client=("203.0.113.9", 4000))
    statuses = [
        sprayer.post(LOGIN, json={"email": f"u{n}@example.org", "password": "123456"}).status_code
        for n in range(8)
    ]
    assert statuses == [401] * 5 + [429] * 3
    refused = sprayer.post(LOGIN, json={"email": "victim@example.org", "password": PASSWORD})
    assert refused.status_code == 429
    # Another client is unaffected.
    other = TestClient(app, client=("198.51.100.7", 4000))
    assert other.post(LOGIN, json={"email": "victim@example.org", "password": PASSWORD}).is_success


def test_many_clients_on_one_account_meet_a_short_account_lock(app: FastAPI, world: World) -> None:
    _with(app, login_account_max_failures=6, login_max_failures=3, login_lockout_seconds=60)
    world.user("popular@example.org")
    statuses: list[int] = []
    for n in range(4):
        client = TestClient(app, client=(f"198.51.100.{n}", 4000))
        for _ in range(2):
            wrong = {"email": "popular@example.org", "password": "letmein"}
            statuses.append(client.post(LOGIN, json=wrong).status_code)
    assert statuses == [401] * 6 + [429] * 2
    owner = TestClient(app, client=("192.0.2.1", 4000))
    locked = owner.post(LOGIN, json={"email": "popular@example.org", "password": PASSWORD})
    assert locked.status_code == 429
    # Short and not growing: the account lock is the base lockout.
    assert 0 < int(locked.headers["retry-after"]) <= 60


def test_repeated_locks_double_in_length_up_to_the_cap(
    app: FastAPI, world: World, session_factory: sessionmaker[Session]
) -> None:
    _with(app, login_max_failures=2, login_lockout_seconds=100, login_max_lockout_seconds=300)
    world.user("target@example.org")
    client = TestClient(app, client=("203.0.113.20", 4000))
    wrong = {"email": "target@example.org", "password": "qwerty"}
    waits = []
    for _ in range(4):
        assert [client.post(LOGIN, json=wrong).status_code for _ in range(2)] == [401, 401]
        locked = client.post(LOGIN, json=wrong)
        assert locked.status_code == 429
        waits.append(int(locked.headers["retry-after"]))
        with session_factory() as session:  # the lock runs out
            session.execute(
                update(LoginThrottle).values(locked_until=utc_now() - timedelta(seconds=1))
            )
            session.commit()
    assert [round(wait, -1) for wait in waits] == [100, 200, 300, 300]


def test_the_table_stores_no_email_or_address(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    world.user("private@example.org")
    client.post(LOGIN, json={"email": "private@example.org", "password": "nope"})
    with session_factory() as session:
        keys = [row.key for row in session.query(LoginThrottle)]
    assert len(keys) == 3
    assert not any("private" in key or "testclient" in key for key in keys)
