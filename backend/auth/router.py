"""Login/logout for the browser (session cookie) and API tokens for scripts."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import select

from backend.auth import service
from backend.auth.schemas import LoginRequest, TokenCreate, TokenCreated, TokenInfo
from backend.deps import CurrentUser, SessionDep, SettingsDep
from backend.models import ApiToken, TokenKind
from backend.users.schemas import UserRead

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=UserRead)
def login(
    body: LoginRequest, response: Response, session: SessionDep, settings: SettingsDep
) -> UserRead:
    """Checks the password and sets an HttpOnly, SameSite=Lax session cookie."""
    try:
        user = service.authenticate(
            session,
            body.email,
            body.password,
            max_failures=settings.login_max_failures,
            lockout=timedelta(seconds=settings.login_lockout_seconds),
        )
    except service.LoginLocked as error:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"Too many wrong passwords for this account; try again in "
            f"{error.retry_after_seconds} s.",
            headers={"Retry-After": str(error.retry_after_seconds)},
        ) from error
    if user is None:
        session.commit()  # keeps the failure count
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Wrong e-mail or password.")
    service.forget_expired_sessions(session, user)
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
    return UserRead.model_validate(user)


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
def revoke_token(token_id: int, user: CurrentUser, session: SessionDep) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.kind != TokenKind.api:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"You have no API token {token_id}.")
    session.delete(token)
    session.commit()
