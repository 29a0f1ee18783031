"""Every table, imported here so that ``Base.metadata`` is complete for Alembic."""

from core.models.annotations import Annotation, AnnotationSubmission
from core.models.base import Base
from core.models.checkpoints import ModelCheckpoint
from core.models.dashboard import ClassPixelCount, CountSource, SaveConflict, SimulationResult
from core.models.features import ImageFeatures
from core.models.images import Image, ImageStatus, Split, SuperpixelMap
from core.models.invitations import Invitation
from core.models.jobs import Job, JobStatus
from core.models.locks import ProjectLock
from core.models.projects import (
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
from core.models.reviews import Review, ReviewDecision
from core.models.rounds import UNFINISHED_ROUND_STATUSES, Query, QueryStatus, Round, RoundStatus
from core.models.scores import ImageScore
from core.models.users import ApiToken, LoginThrottle, TokenKind, User

__all__ = [
    "UNFINISHED_ROUND_STATUSES",
    "Annotation",
    "AnnotationSubmission",
    "ApiToken",
    "Base",
    "ClassPixelCount",
    "CountSource",
    "Image",
    "ImageFeatures",
    "ImageScore",
    "ImageScoring",
    "ImageStatus",
    "Invitation",
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
    "Review",
    "ReviewDecision",
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
