"""FastAPI dependencies: settings, database session, and who is calling.

Endpoints declare what they need and who may call them through the ``Annotated`` aliases
below (``SessionDep``, ``CurrentUser``, ``Admin``); project roles are in
``backend.projects.deps``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from backend.auth.service import find_token, needs_last_used_update
from core.models import TokenKind, User
from core.models.base import utc_now
from core.settings import Settings


async def get_settings_from_app(request: Request) -> Settings:
    # async: FastAPI would hand a plain function to a worker thread (a thread hop per request).
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API token created at /api/v1/auth/tokens")


def get_current_user(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> User:
    """The caller, from a bearer API token or else the browser's session cookie; 401 if none."""
    found = None
    if bearer is not None:
        found = find_token(session, bearer.credentials, TokenKind.api, key=settings.secret_key)
    else:
        cookie = request.cookies.get(settings.session_cookie_name)
        if cookie:
            found = find_token(session, cookie, TokenKind.session, key=settings.secret_key)
    user = None
    if found is not None:
        token, user = found
        # Which credential made this request (a password change keeps only this session).
        request.state.credential_id = token.id
        now = utc_now()
        if needs_last_used_update(token, now):
            token.last_used_at = now
            session.commit()
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Not signed in: log in or send an API token as 'Authorization: Bearer ...'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_admin(user: CurrentUser) -> User:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only an administrator may do this.")
    return user


Admin = Annotated[User, Depends(require_admin)]
