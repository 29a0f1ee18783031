"""Worker jobs: leases and payloads on jobs, per-image round scores, project locks, and the
round status ``querying``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:01:22.736204
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_ROUND_STATUSES = ("pending", "training", "scoring", "labeling", "complete", "failed")
_NEW_ROUND_STATUSES = (
    "pending",
    "training",
    "scoring",
    "querying",
    "labeling",
    "complete",
    "failed",
)


def _round_status(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(
        *values, name="roundstatus", native_enum=False, create_constraint=True, length=16
    )


def _set_round_statuses(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """Rebuilds the CHECK constraint of the non-native ``roundstatus`` enum."""
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a constraint: batch mode copies the table with the new type.
        with op.batch_alter_table("rounds", schema=None, recreate="always") as batch_op:
            batch_op.alter_column(
                "status", existing_type=_round_status(old), type_=_round_status(new), nullable=False
            )
        return
    op.drop_constraint(op.f("ck_rounds_roundstatus"), "rounds", type_="check")
    values = ", ".join(f"'{value}'" for value in new)
    op.create_check_constraint("roundstatus", "rounds", f"status IN ({values})")


def upgrade() -> None:
    op.create_table(
        "image_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("superpixel_map_id", sa.Integer(), nullable=False),
        sa.Column("image_score", sa.Float(), nullable=True),
        sa.Column("superpixel_scores", sa.LargeBinary(), nullable=False),
        sa.Column("unlabeled_pixels", sa.LargeBinary(), nullable=False),
        sa.Column("uncertainty_png", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_scores_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
            name=op.f("fk_image_scores_round_id_rounds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["superpixel_map_id"],
            ["superpixel_maps.id"],
            name=op.f("fk_image_scores_superpixel_map_id_superpixel_maps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_scores")),
        sa.UniqueConstraint("round_id", "image_id", name="uq_image_scores_round_image"),
    )
    with op.batch_alter_table("image_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_image_scores_image_id"), ["image_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_image_scores_round_id"), ["round_id"], unique=False)

    op.create_table(
        "project_locks",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_project_locks_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_locks_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "name", name=op.f("pk_project_locks")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("takeovers", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("eta_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_jobs_lease_expires_at"), ["lease_expires_at"], unique=False
        )
    _set_round_statuses(_OLD_ROUND_STATUSES, _NEW_ROUND_STATUSES)


def downgrade() -> None:
    op.execute("UPDATE rounds SET status = 'scoring' WHERE status = 'querying'")
    _set_round_statuses(_NEW_ROUND_STATUSES, _OLD_ROUND_STATUSES)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_lease_expires_at"))
        batch_op.drop_column("eta_at")
        batch_op.drop_column("takeovers")
        batch_op.drop_column("dispatched_at")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("worker")
        batch_op.drop_column("payload")
    op.drop_table("project_locks")
    with op.batch_alter_table("image_scores", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_scores_round_id"))
        batch_op.drop_index(batch_op.f("ix_image_scores_image_id"))
    op.drop_table("image_scores")
