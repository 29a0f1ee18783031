"""Tessera's Alembic environment and schema revisions, shipped inside the wheel so that
``tessera migrate`` works from an installed package (``core.migrate`` finds this folder)."""
