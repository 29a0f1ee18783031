"""FastAPI dependencies: settings, database session, and who is calling.

Endpoints declare what they need and who may call them through the ``Annotated`` aliases
below (``SessionDep``, ``CurrentUser``, ``Admin``); project roles are in
``backend.projects.deps``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from backend.auth.service import find_token, needs_last_used_update
from core.models import ApiToken, TokenKind, User
from core.models.base import utc_now
from core.settings import Settings


async def get_settings_from_app(request: Request) -> Settings:
    # async: FastAPI would hand a plain function to a worker thread (a thread hop per request).
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's session. async: making a session does no I/O (it connects at its first
    statement), and FastAPI would run a plain generator's start and end in two worker-thread
    hops. Closing one that still holds a transaction rolls it back (a round trip on
    PostgreSQL), so that runs in a worker thread; after a commit there is nothing to send."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    try:
        yield session
    finally:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):  # a cancelled request still returns its connection
                await anyio.to_thread.run_sync(session.close)
        else:
            session.close()


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API token created at /api/v1/auth/tokens")


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def credential_of(
    request: Request, settings: Settings, bearer: HTTPAuthorizationCredentials | None
) -> tuple[str, TokenKind] | None:
    """The secret the caller sent and its kind: a bearer API token, else the browser's
    session cookie; None if neither."""
    if bearer is not None:
        return bearer.credentials, TokenKind.api
    cookie = request.cookies.get(settings.session_cookie_name)
    return (cookie, TokenKind.session) if cookie else None


def signed_in(request: Request, session: Session, found: tuple[ApiToken, User] | None) -> User:
    """The caller of a valid credential (``found``: its token and owner); 401 if none.
    Records which credential made the request and, coarsely, when it was last used."""
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Not signed in: log in or send an API token as 'Authorization: Bearer ...'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token, user = found
    # Which credential made this request (a password change keeps only this session).
    request.state.credential_id = token.id
    now = utc_now()
    if needs_last_used_update(token, now):
        token.last_used_at = now
        session.commit()
    return user


def get_current_user(
    request: Request, session: SessionDep, settings: SettingsDep, bearer: BearerDep
) -> User:
    """The caller, from a bearer API token or else the browser's session cookie; 401 if none."""
    credential = credential_of(request, settings, bearer)
    found = None
    if credential is not None:
        secret, kind = credential
        found = find_token(session, secret, kind, key=settings.secret_key)
    return signed_in(request, session, found)


CurrentUser = Annotated[User, Depends(get_current_user)]


async def require_admin(user: CurrentUser) -> User:
    # async: no I/O here, and a plain function would cost a worker-thread hop.
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only an administrator may do this.")
    return user


Admin = Annotated[User, Depends(require_admin)]
