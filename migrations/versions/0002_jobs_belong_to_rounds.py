"""Jobs may belong to a round (the worker finds the round a job runs).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 14:46:02.853022
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("round_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_round_id"), ["round_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_jobs_round_id_rounds"),
            "rounds",
            ["round_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_jobs_round_id_rounds"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_jobs_round_id"))
        batch_op.drop_column("round_id")
