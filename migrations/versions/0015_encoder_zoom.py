"""Projects choose their pretrained encoder's zoom: ``projects.encoder_zoom`` (1 or 2; 2 runs
the encoder on each image upsampled 2x and takes its maps one stride deeper).

Existing projects keep zoom 1, the model and the cached features they have.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 10:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECK = "encoder_zoom IN (1, 2)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot add a CHECK to a table: batch mode copies it (migrations/env.py turns
        # foreign keys off, so dropping the old copy cascades nowhere).
        with op.batch_alter_table("projects", schema=None, recreate="always") as batch_op:
            batch_op.add_column(
                sa.Column("encoder_zoom", sa.Integer(), server_default="1", nullable=False)
            )
            batch_op.create_check_constraint("encoder_zoom", _CHECK)
        return
    op.add_column(
        "projects", sa.Column("encoder_zoom", sa.Integer(), server_default="1", nullable=False)
    )
    op.create_check_constraint("encoder_zoom", "projects", _CHECK)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("projects", schema=None, recreate="always") as batch_op:
            batch_op.drop_constraint(op.f("ck_projects_encoder_zoom"), type_="check")
            batch_op.drop_column("encoder_zoom")
        return
    op.drop_constraint(op.f("ck_projects_encoder_zoom"), "projects", type_="check")
    op.drop_column("projects", "encoder_zoom")
