"""Login with a session cookie, API tokens, and user administration."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.auth.password_policy import password_problem
from core.models import ApiToken, User
from tests.backend.builders import PASSWORD, World


def test_login_sets_httponly_samesite_cookie_and_logout_ends_the_session(
    client: TestClient, world: World
) -> None:
    world.user("lead@example.org")
    response = client.post(
        "/api/v1/auth/login", json={"email": "Lead@Example.org ", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert "tessera_session=" in cookie
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert client.get("/api/v1/users/me").json()["email"] == "lead@example.org"
    session_cookie = client.cookies.get("tessera_session")
    assert client.post("/api/v1/auth/logout").status_code == 204
    # The server forgot the session: replaying the old cookie no longer works.
    client.cookies.set("tessera_session", session_cookie or "")
    assert client.get("/api/v1/users/me").status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: TestClient, world: World
) -> None:
    world.user("lead@example.org")
    wrong = client.post("/api/v1/auth/login", json={"email": "lead@example.org", "password": "x"})
    unknown = client.post("/api/v1/auth/login", json={"email": "who@example.org", "password": "x"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_api_token_is_shown_once_stored_hashed_and_revocable(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    user = world.user("script@example.org")
    created = client.post("/api/v1/auth/tokens", json={"name": "nightly"}, headers=user.headers)
    assert created.status_code == 201
    secret = created.json()["token"]
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/users/me", headers=bearer).status_code == 200
    listed = client.get("/api/v1/auth/tokens", headers=bearer).json()
    assert {t["name"] for t in listed} == {"tests", "nightly"}
    assert all("token" not in t for t in listed)
    with session_factory() as session:
        hashes = set(session.scalars(select(ApiToken.token_hash)))
    assert secret not in hashes
    revoke = client.delete(f"/api/v1/auth/tokens/{created.json()['id']}", headers=user.headers)
    assert revoke.status_code == 204
    assert client.get("/api/v1/users/me", headers=bearer).status_code == 401


def test_cannot_revoke_someone_elses_token(client: TestClient, world: World) -> None:
    alice = world.user("alice@example.org")
    bob = world.user("bob@example.org")
    response = client.delete(f"/api/v1/auth/tokens/{bob.token_id}", headers=alice.headers)
    assert response.status_code == 404
    assert client.get("/api/v1/users/me", headers=bob.headers).status_code == 200


def test_admin_deactivating_a_user_ends_their_access(client: TestClient, world: World) -> None:
    admin = world.user("admin@example.org", admin=True)
    user = world.user("leaver@example.org")
    response = client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin.headers
    )
    assert response.status_code == 200
    assert client.get("/api/v1/users/me", headers=user.headers).status_code == 401
    login = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 401


def test_admin_creates_users_and_cannot_demote_themselves(client: TestClient, world: World) -> None:
    admin = world.user("admin@example.org", admin=True)
    created = client.post(
        "/api/v1/users",
        json={"email": "Ann@Example.org", "password": "long enough", "name": "Ann"},
        headers=admin.headers,
    )
    assert created.status_code == 201
    assert created.json()["email"] == "ann@example.org"
    duplicate = client.post(
        "/api/v1/users",
        json={"email": "ann@example.org", "password": "long enough"},
        headers=admin.headers,
    )
    assert duplicate.status_code == 409
    demote = client.patch(
        f"/api/v1/users/{admin.id}", json={"is_admin": False}, headers=admin.headers
    )
    assert demote.status_code == 409


def test_repeated_wrong_passwords_lock_the_account_for_a_while(
    app: FastAPI, client: TestClient, world: World
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"login_max_failures": 3, "login_lockout_seconds": 120}
    )
    world.user("target@example.org")
    url = "/api/v1/auth/login"
    for _ in range(3):
        wrong = client.post(url, json={"email": "target@example.org", "password": "guess"})
        assert wrong.status_code == 401
    locked = client.post(url, json={"email": "target@example.org", "password": PASSWORD})
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 120
    assert "Too many failed logins" in locked.json()["detail"]


def test_a_good_login_resets_the_failure_count(
    app: FastAPI, client: TestClient, world: World
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"login_max_failures": 2})
    world.user("forgetful@example.org")
    url = "/api/v1/auth/login"
    wrong = {"email": "forgetful@example.org", "password": "guess"}
    right = {"email": "forgetful@example.org", "password": PASSWORD}
    assert client.post(url, json=wrong).status_code == 401
    assert client.post(url, json=right).status_code == 200
    assert client.post(url, json=wrong).status_code == 401
    # Two wrong passwords, but not in a row: still allowed.
    assert client.post(url, json=right).status_code == 200


def test_changing_your_password_needs_the_current_one_and_ends_sessions(
    app: FastAPI, client: TestClient, world: World
) -> None:
    user = world.user("me@example.org")
    login = {"email": "me@example.org", "password": PASSWORD}
    assert client.post("/api/v1/auth/login", json=login).status_code == 200
    wrong = client.patch(
        "/api/v1/users/me",
        json={"current_password": "nope", "new_password": "a new passphrase"},
        headers=user.headers,
    )
    assert wrong.status_code == 403
    other_browser = TestClient(app)
    assert other_browser.post("/api/v1/auth/login", json=login).status_code == 200
    changed = client.patch(
        "/api/v1/users/me",
        json={"current_password": PASSWORD, "new_password": "a new passphrase"},
        headers=user.headers,
    )
    assert changed.status_code == 200
    assert client.get("/api/v1/users/me").status_code == 401  # cookie session ended
    assert other_browser.get("/api/v1/users/me").status_code == 401
    # API tokens made with the old password are revoked too.
    assert client.get("/api/v1/users/me", headers=user.headers).status_code == 401
    assert client.post("/api/v1/auth/login", json=login).status_code == 401
    new_login = {"email": "me@example.org", "password": "a new passphrase"}
    assert client.post("/api/v1/auth/login", json=new_login).status_code == 200


def test_a_password_change_keeps_only_the_session_that_made_it(app: FastAPI, world: World) -> None:
    user = world.user("me@example.org")
    login = {"email": "me@example.org", "password": PASSWORD}
    this_browser, other_browser = TestClient(app), TestClient(app)
    for browser in (this_browser, other_browser):
        assert browser.post("/api/v1/auth/login", json=login).status_code == 200
    token = this_browser.post("/api/v1/auth/tokens", json={"name": "script"}).json()["token"]
    changed = this_browser.patch(
        "/api/v1/users/me", json={"current_password": PASSWORD, "new_password": "Otter-Kettle-91"}
    )
    assert changed.status_code == 200, changed.text
    assert this_browser.get("/api/v1/users/me").status_code == 200
    assert other_browser.get("/api/v1/users/me").status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert this_browser.get("/api/v1/users/me", headers=bearer).status_code == 401
    assert TestClient(app).get("/api/v1/users/me", headers=user.headers).status_code == 401


WEAK_PASSWORDS = [
    "password",
    " " * 8,
    " " * 12,
    "\t\n  \t\n  \t\n",
    "short1!",
    "password123!",
    "qwertyuiop",
    "1234567890",
    "iloveyou12",
]


@pytest.mark.parametrize("weak", WEAK_PASSWORDS)
def test_weak_passwords_are_refused_everywhere_a_password_is_set(
    client: TestClient, world: World, session_factory: sessionmaker[Session], weak: str
) -> None:
    admin = world.user("admin@example.org", admin=True)
    other = world.user("other@example.org")
    created = client.post(
        "/api/v1/users",
        json={"email": "new@example.org", "password": weak},
        headers=admin.headers,
    )
    assert created.status_code == 422, created.text
    assert "password" in created.text
    own = client.patch(
        "/api/v1/users/me",
        json={"current_password": PASSWORD, "new_password": weak},
        headers=admin.headers,
    )
    assert own.status_code == 422
    reset = client.patch(
        f"/api/v1/users/{other.id}", json={"password": weak}, headers=admin.headers
    )
    assert reset.status_code == 422
    with session_factory() as session:
        assert session.scalar(select(User).where(User.email == "new@example.org")) is None
    login = {"email": "admin@example.org", "password": PASSWORD}
    assert client.post("/api/v1/auth/login", json=login).status_code == 200


def test_a_password_made_of_the_account_itself_is_refused(client: TestClient, world: World) -> None:
    admin = world.user("admin@example.org", admin=True)
    for password in ("bartholomew@example.org", "bartholomew1"):
        response = client.post(
            "/api/v1/users",
            json={"email": "bartholomew@example.org", "password": password},
            headers=admin.headers,
        )
        assert response.status_code == 422, (password, response.text)
        assert "too easy to guess" in response.text


def test_policy_messages_name_the_problem() -> None:
    assert "blank" in (password_problem(" " * 12) or "")
    assert "at least 10" in (password_problem("abc") or "")
    assert "too easy to guess" in (password_problem("password123") or "")
    assert password_problem("correct horse battery") is None


def test_guessing_the_current_password_through_a_session_is_throttled(
    app: FastAPI, client: TestClient, world: World
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"login_max_failures": 3})
    user = world.user("stolen@example.org")
    guesses = [
        client.patch(
            "/api/v1/users/me",
            json={"current_password": f"guess {n}", "new_password": "Otter-Kettle-91"},
            headers=user.headers,
        ).status_code
        for n in range(5)
    ]
    assert guesses == [403, 403, 403, 429, 429]
    login = {"email": "stolen@example.org", "password": PASSWORD}
    assert client.post("/api/v1/auth/login", json=login).status_code == 429
