"""The caller's own account, and user management for administrators."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import and_, delete, select

from backend.auth.service import create_user, hash_password, normalize_email, password_hasher
from backend.deps import Admin, CurrentUser, SessionDep
from backend.models import ApiToken, TokenKind, User
from backend.users.schemas import OwnAccountUpdate, UserCreate, UserRead, UserUpdate
from backend.validation_types import Id

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserRead)
def read_me(user: CurrentUser) -> User:
    return user


@router.patch("/me", response_model=UserRead)
def update_me(
    body: OwnAccountUpdate, user: CurrentUser, session: SessionDep, request: Request
) -> User:
    """Renames the caller, or changes their password (the current one is required).

    A new password revokes every API token of the caller and ends their other browser
    sessions; the session that made the change stays signed in.
    """
    if body.name is not None:
        user.name = body.name
    if body.new_password is not None:
        if body.current_password is None or not password_hasher().verify(
            body.current_password, user.password_hash
        ):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "The current password is wrong.")
        user.password_hash = hash_password(body.new_password)
        # Whoever knew the old password may have made tokens or sessions with it.
        current = getattr(request.state, "credential_id", None)
        session.execute(
            delete(ApiToken).where(
                ApiToken.user_id == user.id,
                ~and_(ApiToken.kind == TokenKind.session, ApiToken.id == current),
            )
        )
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
