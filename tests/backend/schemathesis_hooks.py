"""Loaded by the schemathesis CLI (``SCHEMATHESIS_HOOKS``) in tests/backend/test_schemathesis.py.

Schemathesis calls every operation, the ones that take the caller's access away included:
it deletes its own token, logs out, changes its own password, deactivates or demotes users
and removes members. So the bearer token comes from an auth provider that, whenever it is
asked (at most every few seconds, and again after any 401), first puts the calling account
back as the test set it up (active, admin flag, password, project role) and issues it a
fresh token, straight through the backend's services on the same database as the server.

Environment: ``TESSERA_DATABASE_URL`` and ``TESSERA_SECRET_KEY`` (the server's),
``TESSERA_TEST_ACTOR`` (the e-mail to act as), ``TESSERA_TEST_ROLE`` (``lead`` or
``annotator``) and ``TESSERA_TEST_PROJECT_ID``.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import schemathesis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.auth.service import create_user, issue_token
from core.db import make_engine, make_session_factory
from core.models import Membership, Project, Role, TokenKind, User
from tests.backend.builders import password_hash


@cache
def _session_factory() -> sessionmaker[Session]:
    return make_session_factory(make_engine(os.environ["TESSERA_DATABASE_URL"]))


def restore_actor_and_issue_token() -> str:
    """The actor exactly as set up (recreated if deleted), with a new API token's secret."""
    email = os.environ["TESSERA_TEST_ACTOR"]
    role = Role(os.environ["TESSERA_TEST_ROLE"])
    project_id = int(os.environ["TESSERA_TEST_PROJECT_ID"])
    with _session_factory()() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = create_user(session, email, "unused", password_hash=password_hash())
        user.is_active = True
        user.is_admin = role == Role.lead
        user.password_hash = password_hash()
        if session.get(Project, project_id) is not None:
            membership = session.get(Membership, (project_id, user.id))
            if membership is None:
                session.add(Membership(project_id=project_id, user_id=user.id, role=role))
            else:
                membership.role = role
        _, secret = issue_token(
            session, user, TokenKind.api, key=os.environ["TESSERA_SECRET_KEY"], name="fuzz"
        )
        session.commit()
        return secret


@schemathesis.auth(refresh_interval=5)
class RestoredBearer:
    def get(self, case: Any, context: schemathesis.AuthContext) -> str:
        return restore_actor_and_issue_token()

    def set(self, case: Any, data: str, context: schemathesis.AuthContext) -> None:
        case.headers["Authorization"] = f"Bearer {data}"
