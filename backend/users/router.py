"""The caller's own account, and user management for administrators."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import and_, delete, select

from backend.auth import throttle
from backend.auth.service import create_user, normalize_email
from backend.deps import Admin, CurrentUser, SessionDep, SettingsDep
from backend.users.schemas import OwnAccountUpdate, UserCreate, UserRead, UserUpdate
from backend.validation_types import Id
from core.models import ApiToken, TokenKind, User
from core.passwords import hash_password, password_hasher

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserRead)
def read_me(user: CurrentUser) -> User:
    return user


@router.patch(
    "/me",
    response_model=UserRead,
    responses={
        403: {"description": "The current password is wrong"},
        429: {"description": "Too many wrong passwords from this client or on this account"},
    },
)
def update_me(
    body: OwnAccountUpdate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    request: Request,
) -> User:
    """Renames the caller, or changes their password (the current one is required).

    A new password revokes every API token of the caller and ends their other browser
    sessions; the session that made the change stays signed in. Wrong current passwords
    count against the same limits as failed logins (429).
    """
    if body.new_password is not None:
        # A stolen session must not become a way around the login throttle.
        client = request.client.host if request.client else "unknown"
        keys = throttle.throttle_keys(settings.secret_key, user.email, client)
        try:
            throttle.count_login_attempt(session, keys, settings)
        except throttle.LoginLocked as error:
            session.commit()
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"Too many failed logins; try again in {error.retry_after_seconds} s.",
                headers={"Retry-After": str(error.retry_after_seconds)},
            ) from error
        session.commit()
        if body.current_password is None or not password_hasher().verify(
            body.current_password, user.password_hash
        ):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "The current password is wrong.")
        throttle.forget_login_failures(session, keys)
        user.password_hash = hash_password(body.new_password)
        # Whoever knew the old password may have made tokens or sessions with it.
        current = getattr(request.state, "credential_id", None)
        session.execute(
            delete(ApiToken).where(
                ApiToken.user_id == user.id,
                ~and_(ApiToken.kind == TokenKind.session, ApiToken.id == current),
            )
        )
    if body.name is not None:
        user.name = body.name
    session.commit()
    return user


@router.get("", response_model=list[UserRead])
def list_users(_admin: Admin, session: SessionDep) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


@router.post("", response_model=UserRead, status_code=status.HTTP_201_CREATED)
def add_user(body: UserCreate, _admin: Admin, session: SessionDep) -> User:
    if session.scalar(select(User.id).where(User.email == normalize_email(body.email))):
        raise HTTPException(status.HTTP_409_CONFLICT, f"A user {body.email} already exists.")
    user = create_user(session, body.email, body.password, name=body.name, is_admin=body.is_admin)
    session.commit()
    return user


@router.patch("/{user_id}", response_model=UserRead)
def update_user(user_id: Id, body: UserUpdate, admin: Admin, session: SessionDep) -> User:
    """Renames, resets the password, grants/revokes admin, or (de)activates a user."""
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No user {user_id}.")
    if user.id == admin.id and (body.is_admin is False or body.is_active is False):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "You cannot remove your own admin rights or deactivate "
            "yourself; ask another administrator.",
        )
    if body.name is not None:
        user.name = body.name
    if body.is_admin is not None:
        user.is_admin = body.is_admin
    if body.is_active is not None:
        user.is_active = body.is_active
    if body.password is not None or body.is_active is False:
        # A new password or a deactivation ends every existing login and token.
        session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    if body.password is not None:
        user.password_hash = hash_password(body.password)
    session.commit()
    return user
