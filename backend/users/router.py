"""The caller's own account, and user management for administrators."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import delete, select

from backend.auth.service import create_user, hash_password, normalize_email
from backend.deps import Admin, CurrentUser, SessionDep
from backend.models import ApiToken, User
from backend.users.schemas import UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserRead)
def read_me(user: CurrentUser) -> User:
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
def update_user(user_id: int, body: UserUpdate, admin: Admin, session: SessionDep) -> User:
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
