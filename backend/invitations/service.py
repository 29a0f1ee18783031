"""Invitations: a lead creates a one-time link; the invitee opens it, chooses a password and
becomes a member with the invited role. Functions flush; the request commits.

The link's secret is 256 random bits; only its HMAC under ``TESSERA_SECRET_KEY`` is stored
(as for API tokens), so a leaked table holds no working link. A link works once and until it
expires; a new invitation of the same e-mail to the same project replaces a pending one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from backend.auth.password_policy import password_problem
from backend.auth.service import create_user, normalize_email
from backend.invitations.schemas import InvitationCreate, InvitationState
from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.models import Invitation, Membership, Project, User
from core.models.base import utc_now

INVITE_PREFIX = "inv_"


class InvitationGone(DomainError):
    """The link was used or has expired (410: it will not work again)."""

    status_code = 410


def _digest(secret: str, key: str) -> str:
    # A purpose prefix keeps these digests apart from API token digests under the same key.
    return hmac.new(key.encode(), f"invitation:{secret}".encode(), hashlib.sha256).hexdigest()


def state_of(invitation: Invitation, now: datetime) -> InvitationState:
    if invitation.accepted_at is not None:
        return InvitationState.accepted
    if invitation.expires_at <= now:
        return InvitationState.expired
    return InvitationState.pending


def create_invitation(
    session: Session, project: Project, inviter: User, body: InvitationCreate, *, key: str
) -> tuple[Invitation, str]:
    """A new invitation and its link secret (which exists only in the return value).

    Conflict when an account with the e-mail exists: add it as a member instead.
    """
    email = normalize_email(body.email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(
            f"A user {email} already exists; add them under Members instead of inviting them."
        )
    # The newest link is the one the invitee will use; an older pending one stops working.
    session.execute(
        delete(Invitation).where(
            Invitation.project_id == project.id,
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
        )
    )
    secret = INVITE_PREFIX + secrets.token_urlsafe(32)
    now = utc_now()
    invitation = Invitation(
        project_id=project.id,
        email=email,
        name=body.name.strip(),
        role=body.role,
        token_hash=_digest(secret, key),
        created_by_id=inviter.id,
        created_at=now,
        expires_at=now + timedelta(days=body.expires_in_days),
    )
    session.add(invitation)
    session.flush()
    return invitation, secret


def project_invitations(session: Session, project_id: int) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation)
            .where(Invitation.project_id == project_id)
            .order_by(Invitation.id.desc())
        )
    )


def revoke_invitation(session: Session, project_id: int, invitation_id: int) -> None:
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.project_id != project_id:
        raise NotFound(f"No invitation {invitation_id} in this project.")
    if invitation.accepted_at is not None:
        raise Conflict(
            f"Invitation {invitation_id} was already used; remove the member under Members."
        )
    session.delete(invitation)
    session.flush()


def usable_invitation(session: Session, secret: str, *, key: str) -> tuple[Invitation, Project]:
    """The pending invitation behind a link: NotFound for an unknown link, InvitationGone
    for a used or expired one."""
    invitation = session.scalar(
        select(Invitation).where(Invitation.token_hash == _digest(secret, key))
    )
    project = session.get(Project, invitation.project_id) if invitation is not None else None
    if invitation is None or project is None:
        raise NotFound("This invitation link is not valid; ask your project lead for a new one.")
    state = state_of(invitation, utc_now())
    if state is InvitationState.accepted:
        raise InvitationGone(
            "This invitation link was already used; log in with the password chosen then."
        )
    if state is InvitationState.expired:
        raise InvitationGone(
            f"This invitation link expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC; "
            "ask your project lead for a new one."
        )
    return invitation, project


def accept_invitation(
    session: Session, secret: str, password: str, name: str | None, *, key: str
) -> tuple[User, Invitation]:
    """Creates the invitee's account and membership and marks the link used, all or nothing.

    The link is claimed with a conditional UPDATE, so two tabs accepting at once create one
    account: the second finds the link used (InvitationGone).
    """
    invitation, _project = usable_invitation(session, secret, key=key)
    chosen_name = (name if name is not None else invitation.name).strip()
    problem = password_problem(password, (invitation.email, chosen_name))
    if problem is not None:
        raise InvalidInput(problem)
    if session.scalar(select(User.id).where(User.email == invitation.email)) is not None:
        raise Conflict(
            f"A user {invitation.email} was created meanwhile; log in with that account."
        )
    now = utc_now()
    claimed = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None))
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise InvitationGone("This invitation link was just used in another window.")
    user = create_user(session, invitation.email, password, name=chosen_name)
    session.add(Membership(project_id=invitation.project_id, user_id=user.id, role=invitation.role))
    session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id)
        .values(user_id=user.id)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.refresh(invitation)
    return user, invitation
