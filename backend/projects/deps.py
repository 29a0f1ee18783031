"""Project roles as dependencies. A non-member gets 404, so a project's existence never leaks.

Administrators act as leads in every project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from sqlalchemy import and_, bindparam, select

from backend.auth.service import token_digest, usable
from backend.deps import BearerDep, SessionDep, SettingsDep, credential_of, signed_in
from backend.validation_types import MAX_ID
from core.models import ApiToken, Membership, Project, Role, User
from core.models.base import utc_now


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    user: User
    role: Role

    @property
    def is_lead(self) -> bool:
        return self.role == Role.lead


def not_found(project_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"No project {project_id}.")


def project_member(
    project_id: Annotated[int, Path(ge=1, le=MAX_ID, description="Project id")],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    bearer: BearerDep,
) -> ProjectAccess:
    """The caller (401 as ``get_current_user``) and their role in the project (404 if none).

    Every project request runs this, so the credential, its owner, the project and the
    caller's role are read in one statement and one worker-thread hop."""
    credential = credential_of(request, settings, bearer)
    row = None
    if credential is not None:
        secret, kind = credential
        row = session.execute(
            _CALLER_PROJECT_AND_ROLE,
            {
                "token_hash": token_digest(secret, settings.secret_key),
                "kind": kind,
                "project_id": project_id,
            },
        ).one_or_none()
    found = None
    if row is not None and usable(row[0], row[1], utc_now()):
        found = (row[0], row[1])
    user = signed_in(request, session, found)
    assert row is not None
    project, role = row[2], row[3]
    if project is None:
        raise not_found(project_id)
    if user.is_admin:
        return ProjectAccess(project, user, Role.lead)
    if role is None:
        raise not_found(project_id)
    return ProjectAccess(project, user, role)


# Built once (building and keying a statement costs more CPU than running it). The project
# is joined on the id alone: a credential without that project still finds its owner (404,
# not 401).
_CALLER_PROJECT_AND_ROLE = (
    select(ApiToken, User, Project, Membership.role)
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(Project, Project.id == bindparam("project_id"))
    .outerjoin(
        Membership,
        and_(Membership.project_id == Project.id, Membership.user_id == User.id),
    )
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.kind == bindparam("kind", type_=ApiToken.kind.type),
    )
)


ProjectMember = Annotated[ProjectAccess, Depends(project_member)]


async def project_lead(access: ProjectMember) -> ProjectAccess:
    # async: no I/O here, and a plain function would cost a worker-thread hop.
    if not access.is_lead:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only a lead of this project may do this.")
    return access


ProjectLead = Annotated[ProjectAccess, Depends(project_lead)]
