"""Every table, imported here so that ``Base.metadata`` is complete for Alembic."""

from backend.models.annotations import Annotation, AnnotationSubmission
from backend.models.base import Base
from backend.models.checkpoints import ModelCheckpoint
from backend.models.dashboard import AnnotationClassCounts, SaveConflict, SimulationResult
from backend.models.features import ImageFeatures
from backend.models.images import Image, ImageStatus, Split, SuperpixelMap
from backend.models.jobs import Job, JobStatus
from backend.models.locks import ProjectLock
from backend.models.projects import (
    ImageScoring,
    LabelClass,
    Membership,
    ModelArchitecture,
    Project,
    Role,
    Strategy,
    SuperpixelAlgorithm,
    Uncertainty,
)
from backend.models.rounds import Query, QueryStatus, Round, RoundStatus
from backend.models.scores import ImageScore
from backend.models.users import ApiToken, LoginThrottle, TokenKind, User

__all__ = [
    "Annotation",
    "AnnotationClassCounts",
    "AnnotationSubmission",
    "ApiToken",
    "Base",
    "Image",
    "ImageFeatures",
    "ImageScore",
    "ImageScoring",
    "ImageStatus",
    "Job",
    "JobStatus",
    "LabelClass",
    "LoginThrottle",
    "Membership",
    "ModelArchitecture",
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
