"""Invitations: leads create and revoke one-time links; an invitee opens one and, choosing a
password, gets an account, the invited role and a signed-in browser."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from backend.auth.router import start_session
from backend.deps import SessionDep, SettingsDep
from backend.invitations import service
from backend.invitations.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationCreated,
    InvitationPreview,
    InvitationRead,
)
from backend.projects.deps import ProjectLead
from backend.users.schemas import UserRead
from backend.validation_types import Id
from core.models import Invitation
from core.models.base import utc_now

project_router = APIRouter(prefix="/projects/{project_id}/invitations", tags=["members"])
router = APIRouter(prefix="/invitations", tags=["invitations"])

# The link's secret as the path carries it (``inv_`` and 43 URL-safe characters).
LinkToken = Annotated[str, Path(min_length=1, max_length=100, description="The link's secret")]

_GONE: dict[int | str, dict[str, Any]] = {
    410: {"description": "The link was already used or has expired"}
}
_UNKNOWN: dict[int | str, dict[str, Any]] = {404: {"description": "No such invitation link"}}


def _read(invitation: Invitation) -> InvitationRead:
    return InvitationRead(
        id=invitation.id,
        email=invitation.email,
        name=invitation.name,
        role=invitation.role,
        state=service.state_of(invitation, utc_now()),
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        accepted_at=invitation.accepted_at,
    )


@project_router.post(
    "",
    response_model=InvitationCreated,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "An account with this e-mail exists: add it as a member"}},
)
def create_invitation(
    body: InvitationCreate, access: ProjectLead, session: SessionDep, settings: SettingsDep
) -> InvitationCreated:
    """Invites a new member: the answer holds a one-time link (``/invite/<token>``) to send
    them; opening it lets them choose a password and join with ``role``. A pending link for
    the same e-mail stops working."""
    invitation, secret = service.create_invitation(
        session, access.project, access.user, body, key=settings.secret_key
    )
    session.commit()
    return InvitationCreated(
        **_read(invitation).model_dump(), token=secret, link=f"/invite/{secret}"
    )


@project_router.get("", response_model=list[InvitationRead])
def list_invitations(access: ProjectLead, session: SessionDep) -> list[InvitationRead]:
    """The project's invitations, newest first, pending, accepted or expired (never the link)."""
    return [_read(i) for i in service.project_invitations(session, access.project.id)]


@project_router.delete(
    "/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "The invitation was already used"}},
)
def revoke_invitation(invitation_id: Id, access: ProjectLead, session: SessionDep) -> None:
    """Revokes a pending invitation: its link stops working."""
    service.revoke_invitation(session, access.project.id, invitation_id)
    session.commit()


@router.get("/{token}", response_model=InvitationPreview, responses={**_UNKNOWN, **_GONE})
def read_invitation(
    token: LinkToken, session: SessionDep, settings: SettingsDep
) -> InvitationPreview:
    """What a pending link invites to (no login needed: the link is the credential)."""
    invitation, project = service.usable_invitation(session, token, key=settings.secret_key)
    return InvitationPreview(
        email=invitation.email,
        name=invitation.name,
        role=invitation.role,
        project_id=project.id,
        project_name=project.name,
        expires_at=invitation.expires_at,
    )


@router.post(
    "/{token}/accept",
    response_model=InvitationAccepted,
    status_code=status.HTTP_201_CREATED,
    responses={
        **_UNKNOWN,
        **_GONE,
        409: {"description": "An account with the invited e-mail was created meanwhile"},
        422: {"description": "The password breaks the password policy"},
    },
)
def accept_invitation(
    token: LinkToken,
    body: InvitationAccept,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> InvitationAccepted:
    """Creates the invitee's account with the chosen password, adds them to the project and
    signs this browser in (session cookie). The link then stops working."""
    user, invitation = service.accept_invitation(
        session, token, body.password, body.name, key=settings.secret_key
    )
    start_session(session, user, settings, response)
    return InvitationAccepted(user=UserRead.model_validate(user), project_id=invitation.project_id)
