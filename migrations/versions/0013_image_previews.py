"""Server-made previews of large images (issue 15): a <= 2 Mpx JPEG the annotator shows
while the full upload downloads and decodes.

The column starts empty. Previews of images stored before this migration are made on their
first request (GET .../images/{id}/preview) rather than here: making one decodes the whole
image (~0.1-0.3 s at 12 Mpx), so a backfill would hold the upgrade for minutes per thousand
large images, while most pool images are never opened by an annotator.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable without a default: a catalogue change on PostgreSQL and SQLite, no rewrite.
    op.add_column("images", sa.Column("preview_jpeg", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite that copies and drops the images table, and the drop
    # cascades to every row that references it.
    op.drop_column("images", "preview_jpeg")
