"""Project, class and membership rules. Functions flush; the request commits."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.images.ingest_jobs import create_ingest_jobs
from backend.projects.schemas import ClassCreate, ProjectCreate, ProjectSettingsUpdate
from backend.projects.weights import WeightsFileError, check_encoder_weights
from core.errors import Conflict, InvalidInput
from core.models import (
    Annotation,
    Image,
    ImageStatus,
    Job,
    LabelClass,
    Membership,
    ModelArchitecture,
    Project,
    Role,
    User,
)
from core.settings import Settings

UNLABELED = 255
# Settings that null clears; a null for any other one in an update leaves it as it is.
NULLABLE_SETTINGS = frozenset(
    {
        "budget_pixels",
        "budget_hours",
        "encoder_weights_path",
        "max_iterations",
        "finetune_max_iterations",
        "early_stopping_patience",
    }
)
# Settings whose change makes every image's superpixel map, or its cached encoder
# features, stale.
MAP_SETTINGS = frozenset({"superpixel_size", "superpixel_algorithm"})
FEATURE_SETTINGS = frozenset({"model_architecture", "encoder_weights_path", "encoder_zoom"})


def check_model_settings(project: Project) -> None:
    """422 naming the file and the fault when the project's pretrained encoder would load
    weights that torch refuses (missing, corrupt, not a state dict, another network), or
    naming ``encoder_zoom`` when a U-Net would get a zoom (it has no pretrained encoder)."""
    if project.model_architecture == ModelArchitecture.unet:
        if project.encoder_zoom != 1:
            raise InvalidInput(
                f"encoder_zoom {project.encoder_zoom}: only a pretrained encoder "
                "(efficientnet_lite0/1/2) zooms; a unet project takes encoder_zoom 1."
            )
        return
    if not project.encoder_weights_path:
        return
    path = Path(project.encoder_weights_path)
    try:
        check_encoder_weights(project.model_architecture, path)
    except WeightsFileError as error:
        raise InvalidInput(
            f"encoder_weights_path {str(path)!r}: {error}",
        ) from error


def create_project(session: Session, creator: User, body: ProjectCreate) -> Project:
    """A project led by its creator, with its initial classes."""
    fields = body.model_dump(exclude={"classes"})
    project = Project(**fields)
    check_model_settings(project)
    session.add(project)
    session.flush()
    session.add(Membership(project_id=project.id, user_id=creator.id, role=Role.lead))
    for class_body in body.classes:
        add_class(session, project, class_body)
    return project


def update_settings(project: Project, body: ProjectSettingsUpdate) -> set[str]:
    """Applies the fields sent and returns those whose value changed; the caller commits
    only if this returns (a refused weights file raises 422 before anything is flushed)."""
    changes = body.model_dump(exclude_unset=True)
    if FEATURE_SETTINGS & changes.keys():
        probe = Project(
            model_architecture=changes.get("model_architecture") or project.model_architecture,
            encoder_weights_path=changes.get("encoder_weights_path", project.encoder_weights_path),
            encoder_zoom=changes.get("encoder_zoom") or project.encoder_zoom,
        )
        check_model_settings(probe)
    changed: set[str] = set()
    for field, value in changes.items():
        if value is None and field not in NULLABLE_SETTINGS:
            continue
        if getattr(project, field) != value:
            changed.add(field)
        setattr(project, field, value)
    return changed


def create_recompute_jobs(
    session: Session, project: Project, changed: set[str], settings: Settings
) -> list[Job]:
    """Ingest jobs that compute, for every ready image of the project, what ``changed``
    settings made stale: superpixel maps of the new size or algorithm, encoder features of
    the new model (computed ahead on CPU workers instead of inside a round's scoring; rounds
    wait for them). Flushes; the caller commits, then sends them (``send_ingest_jobs``).
    Images still processing are left to the ingest job they already have."""
    maps = bool(changed & MAP_SETTINGS)
    features = bool(changed & FEATURE_SETTINGS) and (
        project.model_architecture != ModelArchitecture.unet
    )
    if not maps and not features:
        return []
    image_ids = list(
        session.scalars(
            select(Image.id)
            .where(Image.project_id == project.id, Image.status == ImageStatus.ready)
            .order_by(Image.id)
        )
    )
    stale = " and ".join(
        what for what, needed in (("superpixels", maps), ("encoder features", features)) if needed
    )
    return create_ingest_jobs(
        session, project.id, image_ids, settings, what=f"recomputing {stale} (settings changed)"
    )


def project_classes(session: Session, project_id: int) -> list[LabelClass]:
    return list(
        session.scalars(
            select(LabelClass).where(LabelClass.project_id == project_id).order_by(LabelClass.index)
        )
    )


def class_indices(session: Session, project_id: int) -> set[int]:
    return set(session.scalars(select(LabelClass.index).where(LabelClass.project_id == project_id)))


def add_class(session: Session, project: Project, body: ClassCreate) -> LabelClass:
    classes = project_classes(session, project.id)
    if any(existing.name == body.name for existing in classes):
        raise Conflict(f"A class named {body.name!r} exists.")
    used = {existing.index for existing in classes}
    if body.index is None:
        free = [index for index in range(UNLABELED) if index not in used]
        if not free:
            raise Conflict("All 255 class indices are in use.")
        index = free[0]
    elif body.index in used:
        raise Conflict(f"Class index {body.index} is in use.")
    else:
        index = body.index
    label_class = LabelClass(
        project_id=project.id, index=index, name=body.name, colour=body.colour.lower()
    )
    session.add(label_class)
    session.flush()
    return label_class


def project_has_labels(session: Session, project_id: int) -> bool:
    """Whether any mask or ground truth of the project may refer to class indices."""
    labeled = session.scalar(
        select(func.count())
        .select_from(Annotation)
        .join(Image, Image.id == Annotation.image_id)
        .where(Image.project_id == project_id, Annotation.version > 0)
    )
    with_truth = session.scalar(
        select(func.count())
        .select_from(Image)
        .where(Image.project_id == project_id, Image.ground_truth_png.is_not(None))
    )
    return bool(labeled) or bool(with_truth)


def lead_count(session: Session, project_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.project_id == project_id, Membership.role == Role.lead)
        )
        or 0
    )


def image_count(session: Session, project_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Image).where(Image.project_id == project_id)
        )
        or 0
    )
