"""Invitations: a lead makes a one-time link; the invitee chooses a password, is signed in and
is a member with the invited role. Used, expired and unknown links and taken e-mails are
refused with a message naming the problem."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.models import Invitation, Membership, User
from core.models.base import utc_now
from tests.backend.builders import Account, World

API = "/api/v1"
NEW_PASSWORD = "violet staircase thunder"


def _invite(
    client: TestClient, lead: Account, project: int, email: str, role: str = "annotator"
) -> dict[str, object]:
    response = client.post(
        f"{API}/projects/{project}/invitations",
        json={"email": email, "name": "Ann", "role": role},
        headers=lead.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_invitee_sets_a_password_is_signed_in_and_joins_with_the_role(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    invitation = _invite(client, lead, project, " Ann@Example.org ", role="lead")
    token = str(invitation["token"])
    assert invitation["link"] == f"/invite/{token}"
    assert invitation["state"] == "pending"
    with session_factory() as session:
        stored = session.scalars(select(Invitation.token_hash)).one()
    assert token not in stored  # only a digest is kept

    preview = client.get(f"{API}/invitations/{token}")
    assert preview.status_code == 200
    assert preview.json()["email"] == "ann@example.org"
    assert preview.json()["project_name"] == "Streets"

    accepted = client.post(f"{API}/invitations/{token}/accept", json={"password": NEW_PASSWORD})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["project_id"] == project
    # The browser is signed in: the cookie answers /users/me.
    me = client.get(f"{API}/users/me")
    assert me.status_code == 200 and me.json()["email"] == "ann@example.org"
    assert me.json()["name"] == "Ann"
    assert client.get(f"{API}/projects/{project}").json()["role"] == "lead"
    client.cookies.clear()
    login = client.post(
        f"{API}/auth/login", json={"email": "ann@example.org", "password": NEW_PASSWORD}
    )
    assert login.status_code == 200
    listed = client.get(f"{API}/projects/{project}/invitations", headers=lead.headers).json()
    assert [i["state"] for i in listed] == ["accepted"]


def test_a_link_works_once(client: TestClient, world: World) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    token = _invite(client, lead, project, "ann@example.org")["token"]
    first = client.post(f"{API}/invitations/{token}/accept", json={"password": NEW_PASSWORD})
    assert first.status_code == 201
    again = client.post(f"{API}/invitations/{token}/accept", json={"password": NEW_PASSWORD})
    assert again.status_code == 410
    assert "already used" in again.json()["detail"]
    assert client.get(f"{API}/invitations/{token}").status_code == 410


def test_expired_and_unknown_links_are_refused_and_create_nobody(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    token = _invite(client, lead, project, "ann@example.org")["token"]
    with session_factory() as session:
        session.execute(update(Invitation).values(expires_at=utc_now() - timedelta(minutes=1)))
        session.commit()
    expired = client.post(f"{API}/invitations/{token}/accept", json={"password": NEW_PASSWORD})
    assert expired.status_code == 410
    assert "expired" in expired.json()["detail"]
    unknown = client.post(f"{API}/invitations/inv_nope/accept", json={"password": NEW_PASSWORD})
    assert unknown.status_code == 404
    assert "not valid" in unknown.json()["detail"]
    with session_factory() as session:
        assert session.scalar(select(User.id).where(User.email == "ann@example.org")) is None
    listed = client.get(f"{API}/projects/{project}/invitations", headers=lead.headers).json()
    assert [i["state"] for i in listed] == ["expired"]


def test_an_existing_e_mail_is_refused_with_a_pointer_to_members(
    client: TestClient, world: World
) -> None:
    lead = world.user("lead@example.org")
    world.user("ann@example.org")
    project = world.project(lead)
    response = client.post(
        f"{API}/projects/{project}/invitations",
        json={"email": "ANN@example.org"},
        headers=lead.headers,
    )
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_a_weak_password_is_refused_and_the_link_still_works(
    client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    token = _invite(client, lead, project, "ann@example.org")["token"]
    short = client.post(f"{API}/invitations/{token}/accept", json={"password": "short"})
    assert short.status_code == 422
    made_of_email = client.post(
        f"{API}/invitations/{token}/accept", json={"password": "ann@example.org1"}
    )
    assert made_of_email.status_code == 422
    assert "guess" in made_of_email.json()["detail"]
    assert client.get(f"{API}/invitations/{token}").status_code == 200
    with session_factory() as session:
        assert session.scalars(select(Membership)).all() != []  # the lead only
        assert len(session.scalars(select(Membership)).all()) == 1


def test_a_new_invitation_replaces_the_pending_one_and_revoking_ends_a_link(
    client: TestClient, world: World
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    old = _invite(client, lead, project, "ann@example.org")["token"]
    new = _invite(client, lead, project, "ann@example.org")
    assert client.get(f"{API}/invitations/{old}").status_code == 404
    assert client.get(f"{API}/invitations/{new['token']}").status_code == 200
    revoked = client.delete(
        f"{API}/projects/{project}/invitations/{new['id']}", headers=lead.headers
    )
    assert revoked.status_code == 204
    assert client.get(f"{API}/invitations/{new['token']}").status_code == 404


def test_annotators_cannot_invite(client: TestClient, world: World) -> None:
    lead, annotator = world.user("lead@example.org"), world.user("ann@example.org")
    project = world.project(lead, annotators=(annotator,))
    response = client.post(
        f"{API}/projects/{project}/invitations",
        json={"email": "new@example.org"},
        headers=annotator.headers,
    )
    assert response.status_code == 403


def test_role_change_and_removal_keep_one_lead(client: TestClient, world: World) -> None:
    lead, annotator = world.user("lead@example.org"), world.user("ann@example.org")
    project = world.project(lead, annotators=(annotator,))
    members = f"{API}/projects/{project}/members"
    promoted = client.patch(
        f"{members}/{annotator.id}", json={"role": "lead"}, headers=lead.headers
    )
    assert promoted.json()["role"] == "lead"
    demoted = client.patch(f"{members}/{lead.id}", json={"role": "annotator"}, headers=lead.headers)
    assert demoted.status_code == 200
    # The former annotator is now the only lead: removing them is refused.
    last = client.delete(f"{members}/{annotator.id}", headers=annotator.headers)
    assert last.status_code == 409
    assert "at least one lead" in last.json()["detail"]
    assert client.delete(f"{members}/{lead.id}", headers=annotator.headers).status_code == 204
    assert [m["email"] for m in client.get(members, headers=annotator.headers).json()] == [
        "ann@example.org"
    ]
