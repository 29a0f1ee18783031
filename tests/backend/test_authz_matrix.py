"""Every API route x {anonymous, outsider, annotator, lead, admin}, generated from app.routes.

Each route must have a rule below; a route added without one fails
``test_every_route_has_a_rule``. Allowed callers must get past authorization (no 401/403/404,
no 5xx); refused ones get exactly 401 (anonymous), 404 (not a member: no existence leak) or
403 (member without the role). The world is rebuilt after every successful write, so each
request meets the same data.
"""

from __future__ import annotations

import enum
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import text

from backend.invitations.schemas import InvitationCreate
from backend.invitations.service import create_invitation
from core.models import Base, Project, SimulationResult, User
from tests.backend.builders import PASSWORD, Account, World, png_bytes, rgb_image
from tests.backend.conftest import _truncate

API = "/api/v1"
P = f"{API}/projects/{{project_id}}"


class Level(enum.Enum):
    public = "public"  # no login needed
    user = "user"  # any signed-in user
    admin = "admin"
    member = "member"  # lead or annotator of the project (admins count as leads)
    lead = "lead"


RULES: dict[tuple[str, str], Level] = {
    ("GET", f"{API}/openapi.json"): Level.public,
    ("GET", "/docs"): Level.public,
    ("GET", "/docs/oauth2-redirect"): Level.public,
    ("GET", f"{API}/health"): Level.public,
    ("POST", f"{API}/auth/login"): Level.public,
    ("POST", f"{API}/auth/logout"): Level.public,
    ("GET", f"{API}/auth/tokens"): Level.user,
    ("POST", f"{API}/auth/tokens"): Level.user,
    ("DELETE", f"{API}/auth/tokens/{{token_id}}"): Level.user,
    ("GET", f"{API}/users/me"): Level.user,
    ("PATCH", f"{API}/users/me"): Level.user,
    ("GET", f"{API}/users"): Level.admin,
    ("POST", f"{API}/users"): Level.admin,
    ("PATCH", f"{API}/users/{{user_id}}"): Level.admin,
    ("GET", f"{API}/projects"): Level.user,
    ("POST", f"{API}/projects"): Level.user,
    ("GET", P): Level.member,
    ("PATCH", P): Level.lead,
    ("DELETE", P): Level.lead,
    ("GET", f"{P}/classes"): Level.member,
    ("POST", f"{P}/classes"): Level.lead,
    ("PATCH", f"{P}/classes/{{class_id}}"): Level.lead,
    ("DELETE", f"{P}/classes/{{class_id}}"): Level.lead,
    ("GET", f"{P}/members"): Level.member,
    ("POST", f"{P}/members"): Level.lead,
    ("PATCH", f"{P}/members/{{user_id}}"): Level.lead,
    ("DELETE", f"{P}/members/{{user_id}}"): Level.lead,
    ("POST", f"{P}/images"): Level.lead,
    ("GET", f"{P}/images"): Level.member,
    ("GET", f"{P}/images/{{image_id}}"): Level.member,
    ("PATCH", f"{P}/images/{{image_id}}"): Level.lead,
    ("DELETE", f"{P}/images/{{image_id}}"): Level.lead,
    ("GET", f"{P}/images/{{image_id}}/file"): Level.member,
    ("GET", f"{P}/images/{{image_id}}/thumbnail"): Level.member,
    ("GET", f"{P}/images/{{image_id}}/preview"): Level.member,
    ("GET", f"{P}/images/{{image_id}}/superpixels"): Level.member,
    ("PUT", f"{P}/images/{{image_id}}/ground-truth"): Level.lead,
    ("GET", f"{P}/images/{{image_id}}/ground-truth"): Level.lead,
    ("DELETE", f"{P}/images/{{image_id}}/ground-truth"): Level.lead,
    ("GET", f"{P}/images/{{image_id}}/mask"): Level.member,
    ("PUT", f"{P}/images/{{image_id}}/mask"): Level.member,
    ("PATCH", f"{P}/images/{{image_id}}/mask"): Level.member,
    ("GET", f"{P}/images/{{image_id}}/submissions"): Level.member,
    ("POST", f"{P}/tasks/next"): Level.member,
    ("GET", f"{P}/tasks/upcoming"): Level.member,
    ("POST", f"{P}/tasks/{{query_id}}/release"): Level.member,
    ("GET", f"{P}/queries/{{query_id}}/uncertainty"): Level.member,
    ("GET", f"{P}/rounds"): Level.member,
    ("GET", f"{P}/rounds/{{round_id}}"): Level.member,
    ("POST", f"{P}/rounds"): Level.lead,
    ("POST", f"{P}/rounds/{{round_id}}/close"): Level.lead,
    ("POST", f"{P}/rounds/{{round_id}}/oracle"): Level.lead,
    ("GET", f"{P}/jobs"): Level.member,
    ("GET", f"{P}/jobs/{{job_id}}"): Level.member,
    ("POST", f"{P}/jobs/{{job_id}}/retry"): Level.lead,
    ("GET", f"{P}/models"): Level.member,
    ("GET", f"{P}/export"): Level.lead,
    ("GET", f"{P}/dashboard"): Level.lead,
    ("GET", f"{P}/dashboard/budget"): Level.lead,
    ("GET", f"{P}/dashboard/learning-curve"): Level.lead,
    ("GET", f"{P}/dashboard/rounds"): Level.lead,
    ("GET", f"{P}/dashboard/class-balance"): Level.lead,
    ("GET", f"{P}/dashboard/team"): Level.lead,
    ("GET", f"{P}/dashboard/jobs"): Level.lead,
    ("GET", f"{P}/dashboard/simulations"): Level.lead,
    ("POST", f"{P}/dashboard/simulations"): Level.lead,
    ("DELETE", f"{P}/dashboard/simulations/{{simulation_id}}"): Level.lead,
    ("POST", f"{P}/invitations"): Level.lead,
    ("GET", f"{P}/invitations"): Level.lead,
    ("DELETE", f"{P}/invitations/{{invitation_id}}"): Level.lead,
    # The link's secret is the credential.
    ("GET", f"{API}/invitations/{{token}}"): Level.public,
    ("POST", f"{API}/invitations/{{token}}/accept"): Level.public,
    ("GET", f"{P}/review/images"): Level.lead,
    ("GET", f"{P}/review/images/{{image_id}}"): Level.lead,
    ("POST", f"{P}/review/images/{{image_id}}"): Level.lead,
}

SIMULATION_JSONL = (
    b'{"strategy": "dynamic", "seed": 0, "round": 0, "labeled_pixel_fraction": 0.1, '
    b'"val_miou": 0.4}\n'
)

ROLES = ("anonymous", "outsider", "annotator", "lead", "admin")


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    routes = []
    for route in iter_route_contexts(app.routes):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            assert route.path is not None
            routes.append((method, route.path))
    return routes


def expected_refusal(level: Level, role: str) -> int | None:
    """The status a role must get, or None when it is allowed."""
    if level is Level.public:
        return None
    if role == "anonymous":
        return 401
    if role == "admin":
        return None
    if level is Level.user:
        return None
    if level is Level.admin:
        return 403
    if role == "outsider":
        return 404
    if level is Level.lead and role == "annotator":
        return 403
    return None


@dataclass
class Matrix:
    accounts: dict[str, Account]
    ids: dict[str, Any]


def build(world: World) -> Matrix:
    accounts = {
        "outsider": world.user("outsider@example.org"),
        "annotator": world.user("annotator@example.org"),
        "lead": world.user("lead@example.org"),
        "admin": world.user("admin@example.org", admin=True),
    }
    project = world.project(accounts["lead"], annotators=(accounts["annotator"],))
    image = world.image(project)
    world.superpixel_grid(image, cell=8)
    world.ground_truth(image, np.zeros((24, 32), dtype=np.uint8))
    round_ = world.round(project)
    query = world.query(
        round_,
        image,
        list(range(12)),
        uncertainty_png=png_bytes(np.zeros((24, 32), dtype=np.uint8)),
    )
    ids: dict[str, Any] = {
        "project_id": project,
        "image_id": image,
        "round_id": round_,
        "query_id": query,
        "job_id": world.job(project),
        "class_id": 1,  # the first class created in a fresh (truncated) database
        "simulation_id": _simulation(world, project),
    }
    ids["invitation_id"], ids["token"] = _invitation(world, project, accounts["lead"])
    world.model(project, round_)
    return Matrix(accounts, ids)


def _simulation(world: World, project_id: int) -> int:
    with world.factory() as session:
        rows = [json.loads(line) for line in SIMULATION_JSONL.splitlines()]
        result = SimulationResult(project_id=project_id, name="sim", rows=rows)
        session.add(result)
        session.commit()
        return result.id


def _invitation(world: World, project_id: int, lead: Account) -> tuple[int, str]:
    with world.factory() as session:
        project = session.get(Project, project_id)
        inviter = session.get(User, lead.id)
        assert project is not None and inviter is not None
        invitation, secret = create_invitation(
            session,
            project,
            inviter,
            InvitationCreate(email="invitee@example.org"),
            key=world.settings.secret_key,
        )
        session.commit()
        return invitation.id, secret


def _zip_of_one_image() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("new.png", png_bytes(rgb_image(16, 16, seed=99)))
    return buffer.getvalue()


def request_for(method: str, path: str, role: str, matrix: Matrix) -> tuple[str, dict[str, Any]]:
    """A concrete URL and a valid request body for this route."""
    ids = dict(matrix.ids)
    account = matrix.accounts.get(role)
    ids["token_id"] = account.token_id if account else 1
    # Members routes target the annotator; user admin targets the outsider.
    ids["user_id"] = (
        matrix.accounts["annotator"].id if "/members/" in path else matrix.accounts["outsider"].id
    )
    url = path.format(**ids)
    key = (method, path)
    mask = png_bytes(np.full((24, 32), 255, dtype=np.uint8))
    bodies: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
        ("POST", f"{API}/auth/login"): lambda: {
            "json": {"email": "lead@example.org", "password": PASSWORD}
        },
        ("POST", f"{API}/auth/tokens"): lambda: {"json": {"name": "script"}},
        ("POST", f"{API}/users"): lambda: {
            "json": {"email": "new@example.org", "password": "long enough"}
        },
        ("PATCH", f"{API}/users/{{user_id}}"): lambda: {"json": {"name": "Renamed"}},
        ("PATCH", f"{API}/users/me"): lambda: {"json": {"name": "Me"}},
        ("POST", f"{API}/projects"): lambda: {"json": {"name": "Another"}},
        ("PATCH", P): lambda: {"json": {"strategy": "static"}},
        ("POST", f"{P}/classes"): lambda: {"json": {"name": "tree", "colour": "#00ff00"}},
        ("PATCH", f"{P}/classes/{{class_id}}"): lambda: {"json": {"colour": "#123456"}},
        ("POST", f"{P}/members"): lambda: {
            "json": {"email": "outsider@example.org", "role": "annotator"}
        },
        ("PATCH", f"{P}/members/{{user_id}}"): lambda: {"json": {"role": "lead"}},
        ("POST", f"{P}/invitations"): lambda: {"json": {"email": "someone@example.org"}},
        ("POST", f"{API}/invitations/{{token}}/accept"): lambda: {
            "json": {"password": "violet staircase thunder"}
        },
        ("POST", f"{P}/review/images/{{image_id}}"): lambda: {"json": {"decision": "accepted"}},
        ("POST", f"{P}/images"): lambda: {
            "files": [("files", ("bundle.zip", _zip_of_one_image(), "application/zip"))]
        },
        ("PATCH", f"{P}/images/{{image_id}}"): lambda: {"json": {"split": "validation"}},
        ("PUT", f"{P}/images/{{image_id}}/ground-truth"): lambda: {
            "files": {"file": ("gt.png", png_bytes(np.ones((24, 32), np.uint8)), "image/png")}
        },
        ("POST", f"{P}/dashboard/simulations"): lambda: {
            "files": {"file": ("rounds.jsonl", SIMULATION_JSONL, "application/x-ndjson")}
        },
        ("PUT", f"{P}/images/{{image_id}}/mask"): lambda: {
            "content": mask,
            "headers": {"If-Match": '"0"', "Content-Type": "image/png"},
        },
        # The first superpixel map of a fresh (truncated) database is map 1.
        ("PATCH", f"{P}/images/{{image_id}}/mask"): lambda: {
            "json": {"superpixel_map_id": 1, "fills": [[0, 1]], "runs": []},
            "headers": {"If-Match": '"0"'},
        },
    }
    kwargs = bodies[key]() if key in bodies else {}
    if account is not None:
        kwargs["headers"] = {**kwargs.get("headers", {}), **account.headers}
    return url, kwargs


def fingerprint(app: FastAPI) -> tuple[object, ...]:
    """Everything a refused request could have touched, cheaply: counts and key columns."""
    with app.state.engine.connect() as connection:
        counts = tuple(
            connection.execute(text(f'SELECT count(*) FROM "{table.name}"')).scalar()
            for table in Base.metadata.sorted_tables
        )
        rows = tuple(
            tuple(connection.execute(text(query)).all())
            for query in (
                "SELECT * FROM projects ORDER BY id",
                "SELECT * FROM label_classes ORDER BY id",
                "SELECT project_id, user_id, role FROM memberships ORDER BY 1, 2",
                "SELECT id, name, is_admin, is_active FROM users ORDER BY id",
                "SELECT id, split, ground_truth_png IS NULL FROM images ORDER BY id",
                "SELECT image_id, version FROM annotations ORDER BY image_id",
                "SELECT id, status, assignee_id FROM queries ORDER BY id",
                "SELECT id, status FROM rounds ORDER BY id",
            )
        )
    return counts, rows


def test_every_route_has_a_rule(app: FastAPI) -> None:
    missing = [route for route in api_routes(app) if route not in RULES]
    assert not missing, f"routes without an authorization rule: {missing}"
    stale = set(RULES) - set(api_routes(app))
    assert not stale, f"rules for routes that no longer exist: {stale}"


def test_authorization_matrix(app: FastAPI, client: TestClient, world: World) -> None:
    # Every image counts as large, so a member's preview request succeeds (not a 404).
    app.state.settings = app.state.settings.model_copy(update={"large_image_pixels": 1})
    matrix = build(world)
    failures: list[str] = []
    checked = 0
    for method, path in api_routes(app):
        level = RULES[(method, path)]
        for role in ROLES:
            url, kwargs = request_for(method, path, role, matrix)
            before = fingerprint(app)
            response = client.request(method, url, **kwargs)
            checked += 1
            refusal = expected_refusal(level, role)
            if refusal is not None and fingerprint(app) != before:
                failures.append(f"{method} {path} as {role}: refused but changed the database")
            if refusal is not None and response.status_code != refusal:
                failures.append(
                    f"{method} {path} as {role}: {response.status_code}, "
                    f"expected {refusal}: {response.text[:200]}"
                )
            if refusal is None and (
                response.status_code in (401, 403, 404, 405) or response.status_code >= 500
            ):
                failures.append(
                    f"{method} {path} as {role}: {response.status_code}, "
                    f"expected success: {response.text[:200]}"
                )
            if method != "GET" and response.status_code < 400:
                _truncate(app.state.engine)
                client.cookies.clear()
                matrix = build(world)
    assert checked == len(RULES) * len(ROLES)
    assert not failures, "\n".join(failures)
