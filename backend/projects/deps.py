"""Project roles as dependencies. A non-member gets 404, so a project's existence never leaks.

Administrators act as leads in every project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy import and_, bindparam, select

from backend.deps import CurrentUser, SessionDep
from backend.validation_types import MAX_ID
from core.models import Membership, Project, Role, User


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
    user: CurrentUser,
    session: SessionDep,
) -> ProjectAccess:
    row = session.execute(
        _PROJECT_AND_ROLE, {"project_id": project_id, "user_id": user.id}
    ).one_or_none()
    if row is None:
        raise not_found(project_id)
    project, role = row
    if user.is_admin:
        return ProjectAccess(project, user, Role.lead)
    if role is None:
        raise not_found(project_id)
    return ProjectAccess(project, user, role)


# Every project request runs this: one statement, built once.
_PROJECT_AND_ROLE = (
    select(Project, Membership.role)
    .outerjoin(
        Membership,
        and_(Membership.project_id == Project.id, Membership.user_id == bindparam("user_id")),
    )
    .where(Project.id == bindparam("project_id"))
)


ProjectMember = Annotated[ProjectAccess, Depends(project_member)]


def project_lead(access: ProjectMember) -> ProjectAccess:
    if not access.is_lead:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only a lead of this project may do this.")
    return access


ProjectLead = Annotated[ProjectAccess, Depends(project_lead)]
