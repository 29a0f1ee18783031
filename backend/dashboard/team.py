"""The team part: per member or saver, saves, pixels, hours, throughput and refused saves."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.dashboard.schemas import TeamMember
from core.models import (
    AnnotationSubmission,
    Image,
    Membership,
    Project,
    SaveConflict,
    User,
)


def team(session: Session, project: Project) -> list[TeamMember]:
    """Per person who saved or belongs here: accepted saves, superpixels and pixels their
    saves changed, recorded hours, throughput, and refused (412) saves."""
    saves: dict[int, tuple[int, int, int, float]] = {
        int(user_id or 0): (int(n), int(superpixels), int(pixels), float(seconds))
        # user_id is never NULL here (filtered below); ``or 0`` only narrows the type.
        for user_id, n, superpixels, pixels, seconds in session.execute(
            select(
                AnnotationSubmission.user_id,
                func.count(AnnotationSubmission.id),
                func.coalesce(func.sum(AnnotationSubmission.changed_superpixels), 0),
                func.coalesce(func.sum(AnnotationSubmission.changed_pixels), 0),
                func.coalesce(func.sum(AnnotationSubmission.seconds), 0.0),
            )
            .join(Image, Image.id == AnnotationSubmission.image_id)
            .where(Image.project_id == project.id, AnnotationSubmission.user_id.is_not(None))
            .group_by(AnnotationSubmission.user_id)
        )
    }
    conflicts: dict[int, int] = {
        int(user_id or 0): int(n)
        for user_id, n in session.execute(
            select(SaveConflict.user_id, func.count(SaveConflict.id))
            .where(SaveConflict.project_id == project.id, SaveConflict.user_id.is_not(None))
            .group_by(SaveConflict.user_id)
        )
    }
    roles = {
        int(user_id): role.value
        for user_id, role in session.execute(
            select(Membership.user_id, Membership.role).where(Membership.project_id == project.id)
        )
    }
    user_ids = set(saves) | set(conflicts) | set(roles)
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    members = []
    for user_id in sorted(user_ids):
        user = users.get(user_id)
        if user is None:
            continue
        n, superpixels, pixels, seconds = saves.get(user_id, (0, 0, 0, 0.0))
        refused = conflicts.get(user_id, 0)
        hours = seconds / 3600.0
        members.append(
            TeamMember(
                user_id=user_id,
                email=user.email,
                name=user.name,
                role=roles.get(user_id),
                submissions=n,
                superpixels=superpixels,
                pixels=pixels,
                hours=hours,
                superpixels_per_hour=superpixels / hours if hours > 0 else None,
                pixels_per_hour=pixels / hours if hours > 0 else None,
                conflicts=refused,
                conflict_share=refused / (refused + n) if refused + n else 0.0,
            )
        )
    return members
