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


def _check(values: tuple[str, ...]) -> str:
    return "model_architecture IN ({})".format(", ".join(f"'{value}'" for value in values))


def _set_architectures(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """Rewrites the CHECK constraint of the non-native ``modelarchitecture`` enum."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f("ck_projects_modelarchitecture"), "projects", type_="check")
        op.create_check_constraint("modelarchitecture", "projects", _check(new))
        return
    # SQLite cannot alter a constraint, and batch mode's table copy would drop ``projects``
    # with foreign keys on: the DROP deletes its rows first and cascades to every image,
    # mask and round. SQLite's documented way for a change that every stored row already
    # satisfies is to edit the table's schema text (sqlite.org/lang_altertable.html, "other
    # kinds of table schema changes"); rows stored under ``new`` satisfy it by then.
    table = sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'projects'")
    schema = bind.scalar(table)
    if schema is None or schema.count(_check(old)) != 1:
        raise RuntimeError(f"projects has no CHECK ({_check(old)}): {schema}")
    version = bind.scalar(sa.text("PRAGMA schema_version"))
    bind.execute(sa.text("PRAGMA writable_schema = ON"))
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'projects'"),
        {"sql": schema.replace(_check(old), _check(new))},
    )
    bind.execute(sa.text(f"PRAGMA schema_version = {int(version) + 1}"))
    bind.execute(sa.text("PRAGMA writable_schema = OFF"))


def upgrade() -> None:
    _set_architectures(_OLD_ARCHITECTURES, _NEW_ARCHITECTURES)


def downgrade() -> None:
    op.execute(
        "UPDATE projects SET model_architecture = 'efficientnet_lite0', "
        "encoder_weights_path = NULL "
        "WHERE model_architecture IN ('efficientnet_lite1', 'efficientnet_lite2')"
    )
    _set_architectures(_NEW_ARCHITECTURES, _OLD_ARCHITECTURES)
