"""Pre-fill from the model (issue 15): the class the round's model predicts for each
superpixel of a scored image, copied onto the queries that ask about it; and whether a
submission started from that prediction (the dashboard compares effort with and without).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("image_scores") as batch:
        batch.add_column(sa.Column("superpixel_classes", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("queries") as batch:
        batch.add_column(sa.Column("predicted_classes", sa.JSON(), nullable=True))
    with op.batch_alter_table("annotation_submissions") as batch:
        batch.add_column(
            sa.Column("prefilled", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("annotation_submissions") as batch:
        batch.drop_column("prefilled")
    with op.batch_alter_table("queries") as batch:
        batch.drop_column("predicted_classes")
    with op.batch_alter_table("image_scores") as batch:
        batch.drop_column("superpixel_classes")
