"""Projects, their settings, label classes and members."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import select

from backend.deps import CurrentUser, SessionDep, SettingsDep
from backend.images.ingest_jobs import send_ingest_jobs
from backend.projects import service
from backend.projects.deps import ProjectLead, ProjectMember
from backend.projects.schemas import (
    ClassCreate,
    ClassRead,
    ClassUpdate,
    MemberAdd,
    MemberRead,
    MemberUpdate,
    ProjectCreate,
    ProjectDetail,
    ProjectRead,
    ProjectSettingsUpdate,
)
from backend.validation_types import Id
from core.models import LabelClass, Membership, Project, Role, User

router = APIRouter(prefix="/projects", tags=["projects"])


def _detail(access_role: Role, project: Project, session: SessionDep) -> ProjectDetail:
    return ProjectDetail(
        **ProjectRead.model_validate(project).model_dump(),
        role=access_role,
        classes=[ClassRead.model_validate(c) for c in service.project_classes(session, project.id)],
        image_count=service.image_count(session, project.id),
    )


@router.get("", response_model=list[ProjectRead])
def list_projects(user: CurrentUser, session: SessionDep) -> list[Project]:
    """Projects the caller belongs to (all of them for an administrator)."""
    query = select(Project).order_by(Project.id)
    if not user.is_admin:
        query = query.join(Membership, Membership.project_id == Project.id).where(
            Membership.user_id == user.id
        )
    return list(session.scalars(query))


@router.post("", response_model=ProjectDetail, status_code=status.HTTP_201_CREATED)
def create_project(body: ProjectCreate, user: CurrentUser, session: SessionDep) -> ProjectDetail:
    """Creates a project; the caller becomes its lead."""
    project = service.create_project(session, user, body)
    session.commit()
    return _detail(Role.lead, project, session)


@router.get("/{project_id}", response_model=ProjectDetail)
def read_project(access: ProjectMember, session: SessionDep) -> ProjectDetail:
    return _detail(access.role, access.project, session)


@router.patch("/{project_id}", response_model=ProjectDetail)
def update_project(
    body: ProjectSettingsUpdate, access: ProjectLead, session: SessionDep, settings: SettingsDep
) -> ProjectDetail:
    """Changes settings; they apply from the next round on. A new superpixel size or
    algorithm, or a new pretrained model, queues ingest jobs that recompute the maps or
    encoder features of every image (listed under ``GET .../jobs``); rounds wait for them."""
    changed = service.update_settings(access.project, body)
    jobs = service.create_recompute_jobs(session, access.project, changed, settings)
    session.commit()
    if jobs:
        send_ingest_jobs(session, jobs, settings)  # commits; a refused send fails the job
    return _detail(access.role, access.project, session)


@router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_project(access: ProjectLead, session: SessionDep) -> None:
    """Deletes the project with its images, masks, rounds and models."""
    session.delete(access.project)
    session.commit()


# --- classes -------------------------------------------------------------------------------


@router.get("/{project_id}/classes", response_model=list[ClassRead], tags=["classes"])
def list_classes(access: ProjectMember, session: SessionDep) -> list[LabelClass]:
    return service.project_classes(session, access.project.id)


@router.post(
    "/{project_id}/classes",
    response_model=ClassRead,
    status_code=status.HTTP_201_CREATED,
    tags=["classes"],
)
def add_class(body: ClassCreate, access: ProjectLead, session: SessionDep) -> LabelClass:
    label_class = service.add_class(session, access.project, body)
    session.commit()
    return label_class


def _get_class(session: SessionDep, project_id: int, class_id: int) -> LabelClass:
    label_class = session.get(LabelClass, class_id)
    if label_class is None or label_class.project_id != project_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No class {class_id} in this project.")
    return label_class


@router.patch("/{project_id}/classes/{class_id}", response_model=ClassRead, tags=["classes"])
def update_class(
    class_id: Id, body: ClassUpdate, access: ProjectLead, session: SessionDep
) -> LabelClass:
    """Renames or recolours a class (its index, the pixel value in masks, never changes)."""
    label_class = _get_class(session, access.project.id, class_id)
    if body.name is not None and body.name != label_class.name:
        taken = session.scalar(
            select(LabelClass.id).where(
                LabelClass.project_id == access.project.id, LabelClass.name == body.name
            )
        )
        if taken:
            raise HTTPException(status.HTTP_409_CONFLICT, f"A class named {body.name!r} exists.")
        label_class.name = body.name
    if body.colour is not None:
        label_class.colour = body.colour.lower()
    session.commit()
    return label_class


@router.delete(
    "/{project_id}/classes/{class_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["classes"],
)
def delete_class(class_id: Id, access: ProjectLead, session: SessionDep) -> None:
    """Deletes a class, only while no mask or ground truth exists that could use its index."""
    label_class = _get_class(session, access.project.id, class_id)
    if service.project_has_labels(session, access.project.id):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "The project already has labels or ground truth; deleting a class would leave "
            "pixels with a meaningless index. Rename it instead.",
        )
    session.delete(label_class)
    session.commit()


# --- members -------------------------------------------------------------------------------


def _member_rows(session: SessionDep, project_id: int) -> list[MemberRead]:
    rows = session.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project_id)
        .order_by(User.id)
    )
    return [
        MemberRead(user_id=user.id, email=user.email, name=user.name, role=membership.role)
        for membership, user in rows
    ]


@router.get("/{project_id}/members", response_model=list[MemberRead], tags=["members"])
def list_members(access: ProjectMember, session: SessionDep) -> list[MemberRead]:
    return _member_rows(session, access.project.id)


@router.post(
    "/{project_id}/members",
    response_model=MemberRead,
    status_code=status.HTTP_201_CREATED,
    tags=["members"],
)
def add_member(body: MemberAdd, access: ProjectLead, session: SessionDep) -> MemberRead:
    """Adds an existing user (by e-mail) as lead or annotator."""
    user = session.scalar(select(User).where(User.email == body.email.strip().lower()))
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No user {body.email}.")
    if session.get(Membership, (access.project.id, user.id)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{user.email} is already a member.")
    session.add(Membership(project_id=access.project.id, user_id=user.id, role=body.role))
    session.commit()
    return MemberRead(user_id=user.id, email=user.email, name=user.name, role=body.role)


def _get_membership(session: SessionDep, project_id: int, user_id: int) -> Membership:
    membership = session.get(Membership, (project_id, user_id))
    if membership is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"User {user_id} is not a member.")
    return membership


def _refuse_last_lead(session: SessionDep, membership: Membership) -> None:
    if membership.role == Role.lead and service.lead_count(session, membership.project_id) <= 1:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "A project needs at least one lead; add another first."
        )


@router.patch("/{project_id}/members/{user_id}", response_model=MemberRead, tags=["members"])
def change_member_role(
    user_id: Id, body: MemberUpdate, access: ProjectLead, session: SessionDep
) -> MemberRead:
    membership = _get_membership(session, access.project.id, user_id)
    if body.role != Role.lead:
        _refuse_last_lead(session, membership)
    membership.role = body.role
    session.commit()
    return next(m for m in _member_rows(session, access.project.id) if m.user_id == user_id)


@router.delete(
    "/{project_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["members"],
)
def remove_member(user_id: Id, access: ProjectLead, session: SessionDep) -> None:
    membership = _get_membership(session, access.project.id, user_id)
    _refuse_last_lead(session, membership)
    session.delete(membership)
    session.commit()
