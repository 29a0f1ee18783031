"""Projects with their active-learning settings, who belongs to them, and their label classes."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.models.base import Base, UTCDateTime, utc_now


def _str_enum(enum_class: type[enum.StrEnum]) -> Enum:
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
    )


class Strategy(enum.StrEnum):
    """Region selection inside a picked image (DESIGN §1.5)."""

    dynamic = "dynamic"
    static = "static"
    random_superpixels = "random_superpixels"
    random_images = "random_images"
    full = "full"


class Uncertainty(enum.StrEnum):
    """Pixel score (DESIGN §1.3); ``paper`` reproduces the paper code's entropy + mean entropy."""

    entropy = "entropy"
    bald = "bald"
    margin = "margin"
    paper = "paper"


class SuperpixelAlgorithm(enum.StrEnum):
    slic = "slic"
    felzenszwalb = "felzenszwalb"


class Role(enum.StrEnum):
    lead = "lead"
    annotator = "annotator"


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    superpixel_size: Mapped[int] = mapped_column(Integer, default=32)
    superpixel_algorithm: Mapped[SuperpixelAlgorithm] = mapped_column(
        _str_enum(SuperpixelAlgorithm), default=SuperpixelAlgorithm.slic
    )
    strategy: Mapped[Strategy] = mapped_column(_str_enum(Strategy), default=Strategy.dynamic)
    # The static baseline's share of superpixels per picked image (paper code: 27.5 %).
    static_fraction: Mapped[float] = mapped_column(Float, default=0.275)
    uncertainty: Mapped[Uncertainty] = mapped_column(
        _str_enum(Uncertainty), default=Uncertainty.entropy
    )
    mc_samples: Mapped[int] = mapped_column(Integer, default=20)
    initial_images: Mapped[int] = mapped_column(Integer, default=50)
    images_per_round: Mapped[int] = mapped_column(Integer, default=50)
    budget_pixels: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_hours: Mapped[float | None] = mapped_column(Float, nullable=True)


class Membership(Base):
    __tablename__ = "memberships"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[Role] = mapped_column(_str_enum(Role))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class LabelClass(Base):
    __tablename__ = "label_classes"
    __table_args__ = (
        UniqueConstraint("project_id", "index", name="uq_label_classes_project_index"),
        UniqueConstraint("project_id", "name", name="uq_label_classes_project_name"),
        # 255 is the "unlabeled" value of every mask, so it can never be a class.
        CheckConstraint('"index" >= 0 AND "index" < 255', name="index_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    colour: Mapped[str] = mapped_column(String(7))  # "#rrggbb"
