"""Projects may train on the EfficientNet-Lite1 and -Lite2 encoders: the model architecture
enum's CHECK constraint takes ``efficientnet_lite1`` and ``efficientnet_lite2``.

Downgrade moves those projects to ``efficientnet_lite0`` with the weights its package ships
(a Lite1/Lite2 weights file does not fit Lite0); their next round trains a new model.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_ARCHITECTURES = ("unet", "efficientnet_lite0")
_NEW_ARCHITECTURES = (*_OLD_ARCHITECTURES, "efficientnet_lite1", "efficientnet_lite2")


def _architecture(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(
        *values, name="modelarchitecture", native_enum=False, create_constraint=True, length=32
    )


def _set_architectures(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """Rebuilds the CHECK constraint of the non-native ``modelarchitecture`` enum."""
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a constraint: batch mode copies the table with the new type
        # (migrations/env.py turns foreign keys off, so dropping the old copy cascades nowhere).
        with op.batch_alter_table("projects", schema=None, recreate="always") as batch_op:
            batch_op.alter_column(
                "model_architecture",
                existing_type=_architecture(old),
                type_=_architecture(new),
                existing_nullable=False,
                existing_server_default="unet",
            )
        return
    op.drop_constraint(op.f("ck_projects_modelarchitecture"), "projects", type_="check")
    values = ", ".join(f"'{value}'" for value in new)
    op.create_check_constraint("modelarchitecture", "projects", f"model_architecture IN ({values})")


def upgrade() -> None:
    _set_architectures(_OLD_ARCHITECTURES, _NEW_ARCHITECTURES)


def downgrade() -> None:
    op.execute(
        "UPDATE projects SET model_architecture = 'efficientnet_lite0', "
        "encoder_weights_path = NULL "
        "WHERE model_architecture IN ('efficientnet_lite1', 'efficientnet_lite2')"
    )
    _set_architectures(_NEW_ARCHITECTURES, _OLD_ARCHITECTURES)
