"""Invitations as leads create them and invitees open them."""

from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from backend.users.schemas import NewPassword, UserRead
from core.models import Role


class InvitationCreate(BaseModel):
    model_config = ConfigDict(
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"email": "ann@example.org", "role": "annotator"}]},
    )

    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(default="", max_length=200)
    role: Role = Role.annotator
    expires_in_days: int = Field(
        default=7, ge=1, le=30, description="The link stops working after this many days."
    )


class InvitationState(enum.StrEnum):
    pending = "pending"
    accepted = "accepted"
    expired = "expired"


class InvitationRead(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    state: InvitationState
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None


class InvitationCreated(InvitationRead):
    token: str = Field(description="The link's secret; shown only in this answer.")
    link: str = Field(description="The page the invitee opens: /invite/<token>.")


class InvitationPreview(BaseModel):
    """What the invitee sees before choosing a password."""

    email: str
    name: str
    role: Role
    project_id: int
    project_name: str
    expires_at: datetime


class InvitationAccept(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"password": "a long passphrase", "name": "Ann"}]}
    )

    password: NewPassword
    name: str | None = Field(default=None, max_length=200)


class InvitationAccepted(BaseModel):
    user: UserRead
    project_id: int
