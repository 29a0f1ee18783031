"""Every table, imported here so that ``Base.metadata`` is complete for Alembic."""

from backend.models.annotations import Annotation, AnnotationSubmission
from backend.models.base import Base
from backend.models.checkpoints import ModelCheckpoint
from backend.models.dashboard import AnnotationClassCounts, SaveConflict, SimulationResult
from backend.models.images import Image, ImageStatus, Split, SuperpixelMap
from backend.models.jobs import Job, JobStatus
from backend.models.locks import ProjectLock
from backend.models.projects import (
    LabelClass,
    Membership,
    Project,
    Role,
    Strategy,
    SuperpixelAlgorithm,
    Uncertainty,
)
from backend.models.rounds import Query, QueryStatus, Round, RoundStatus
from backend.models.scores import ImageScore
from backend.models.users import ApiToken, TokenKind, User

__all__ = [
    "Annotation",
    "AnnotationClassCounts",
    "AnnotationSubmission",
    "ApiToken",
    "Base",
    "Image",
    "ImageScore",
    "ImageStatus",
    "Job",
    "JobStatus",
    "LabelClass",
    "Membership",
    "ModelCheckpoint",
    "Project",
    "ProjectLock",
    "Query",
    "QueryStatus",
    "Role",
    "Round",
    "RoundStatus",
    "SaveConflict",
    "SimulationResult",
    "Split",
    "Strategy",
    "SuperpixelAlgorithm",
    "SuperpixelMap",
    "TokenKind",
    "Uncertainty",
    "User",
]
