"""Project roles as dependencies. A non-member gets 404, so a project's existence never leaks.

Administrators act as leads in every project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, status
from sqlalchemy import select

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
    project = session.get(Project, project_id)
    if project is None:
        raise not_found(project_id)
    if user.is_admin:
        return ProjectAccess(project, user, Role.lead)
    role = session.scalar(
        select(Membership.role).where(
            Membership.project_id == project_id, Membership.user_id == user.id
        )
    )
    if role is None:
        raise not_found(project_id)
    return ProjectAccess(project, user, role)


ProjectMember = Annotated[ProjectAccess, Depends(project_member)]


def project_lead(access: ProjectMember) -> ProjectAccess:
    if not access.is_lead:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "Only a lead of this project may do this.")
    return access


ProjectLead = Annotated[ProjectAccess, Depends(project_lead)]
