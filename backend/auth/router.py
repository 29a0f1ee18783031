"""Login/logout for the browser (session cookie) and API tokens for scripts."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth import service, throttle
from backend.auth.schemas import LoginRequest, TokenCreate, TokenCreated, TokenInfo
from backend.deps import CurrentUser, SessionDep, SettingsDep
from backend.users.schemas import UserRead
from backend.validation_types import Id
from core.models import ApiToken, TokenKind, User
from core.settings import Settings

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=UserRead,
    responses={
        401: {"description": "Wrong e-mail or password (the same answer for unknown e-mails)"},
        429: {"description": "Too many failed logins from this client or on this account"},
    },
)
def login(
    body: LoginRequest,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
) -> UserRead:
    """Checks the password and sets an HttpOnly, SameSite=Lax session cookie.

    Failed logins are throttled per client and per account (``Retry-After`` on 429).
    """
    email = service.normalize_email(body.email)
    client = request.client.host if request.client else "unknown"
    keys = throttle.throttle_keys(settings.secret_key, email, client)
    try:
        throttle.count_login_attempt(session, keys, settings)
    except throttle.LoginLocked as error:
        session.commit()
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many failed logins; try again in {error.retry_after_seconds} s.",
            headers={"Retry-After": str(error.retry_after_seconds)},
        ) from error
    # Committed before the slow password check, so parallel attempts see this one.
    session.commit()
    user = service.check_password(session, email, body.password)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Wrong e-mail or password.")
    throttle.forget_login_failures(session, keys)
    service.forget_expired_sessions(session, user)
    start_session(session, user, settings, response)
    return UserRead.model_validate(user)


def start_session(session: Session, user: User, settings: Settings, response: Response) -> None:
    """Signs ``user`` in on this browser: a session token, committed, set as an HttpOnly,
    SameSite=Lax cookie (login, and accepting an invitation)."""
    _, secret = service.issue_token(
        session,
        user,
        TokenKind.session,
        key=settings.secret_key,
        lifetime=timedelta(seconds=settings.session_max_age_seconds),
    )
    session.commit()
    response.set_cookie(
        settings.session_cookie_name,
        secret,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.session_cookie_secure,
        path="/",
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Ends the browser session (the server forgets it) and clears the cookie."""
    cookie = request.cookies.get(settings.session_cookie_name)
    if cookie:
        service.revoke_token_secret(session, cookie, key=settings.secret_key)
        session.commit()
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(settings.session_cookie_name, path="/")
    return response


@router.get("/tokens", response_model=list[TokenInfo])
def list_tokens(user: CurrentUser, session: SessionDep) -> list[ApiToken]:
    """The caller's API tokens (secrets are never shown again)."""
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.kind == TokenKind.api)
            .order_by(ApiToken.id)
        )
    )


@router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> TokenCreated:
    """Creates an API token for scripts: send it as ``Authorization: Bearer <token>``."""
    lifetime = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    token, secret = service.issue_token(
        session, user, TokenKind.api, key=settings.secret_key, name=body.name, lifetime=lifetime
    )
    session.commit()
    return TokenCreated(**TokenInfo.model_validate(token).model_dump(), token=secret)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: Id, user: CurrentUser, session: SessionDep) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.kind != TokenKind.api:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"You have no API token {token_id}.")
    session.delete(token)
    session.commit()
