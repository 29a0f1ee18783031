"""Per-project model (U-Net or pretrained EfficientNet-Lite0), training and scoring options,
and the encoder feature cache (issue 11).

Existing projects keep the U-Net they trained (server default ``unet``); new ones get the
model's ORM default.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "model_architecture",
                sa.Enum(
                    "unet",
                    "efficientnet_lite0",
                    name="modelarchitecture",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                server_default="unet",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("encoder_weights_path", sa.String(length=1000), nullable=True)
        )
        batch_op.add_column(sa.Column("max_iterations", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("finetune_max_iterations", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("early_stopping_patience", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("validate_every", sa.Integer(), server_default="25", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "image_score",
                sa.Enum(
                    "mean",
                    "foreground_weighted",
                    name="imagescoring",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                server_default="mean",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("background_classes", sa.JSON(), server_default="[0]", nullable=False)
        )
        batch_op.add_column(
            sa.Column("class_balance", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "image_features",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("shapes", sa.JSON(), nullable=False),
        sa.Column("raw_bytes", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_features_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_features")),
        sa.UniqueConstraint("image_id", "fingerprint", name="uq_image_features_image_fingerprint"),
    )


def downgrade() -> None:
    op.drop_table("image_features")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_projects_imagescoring"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_projects_modelarchitecture"), type_="check")
        for column in (
            "class_balance",
            "background_classes",
            "image_score",
            "validate_every",
            "early_stopping_patience",
            "finetune_max_iterations",
            "max_iterations",
            "encoder_weights_path",
            "model_architecture",
        ):
            batch_op.drop_column(column)
