"""Alembic environment: the URL comes from Tessera's settings unless a caller passes one.

On SQLite, foreign keys are off while the migrations run. Batch mode rebuilds a table by
copying it, dropping the old one and renaming the copy; with foreign keys on, that DROP
deletes the table's rows first and cascades to every row that references them (a project's
images, masks, rounds...). Alembic's batch-mode docs ("Dealing with Referencing Foreign
Keys") and sqlite.org/lang_altertable.html prescribe this: keys off, one transaction,
``PRAGMA foreign_key_check`` before the commit, keys back on.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from core.db import make_engine
from core.models import Base
from core.settings import get_settings

config = context.config
target_metadata = Base.metadata

_SHOWN_VIOLATIONS = 10


def _set_sqlite_foreign_keys(connection: Connection, enabled: bool) -> None:
    """PRAGMA foreign_keys is a no-op inside a transaction, so it runs in none."""
    connection.exec_driver_sql(f"PRAGMA foreign_keys = {'ON' if enabled else 'OFF'}")
    applied = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    connection.commit()  # ends the transaction SQLAlchemy began for the PRAGMAs
    if applied != int(enabled):
        raise RuntimeError(f"SQLite did not turn foreign keys {'on' if enabled else 'off'}")


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    """Raises, inside the migrations' transaction, when a row references a missing row."""
    violations = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if violations:
        shown = ", ".join(
            f"{table} row {rowid} -> {parent}"
            for table, rowid, parent, _ in violations[:_SHOWN_VIOLATIONS]
        )
        raise RuntimeError(
            f"the migrations would leave {len(violations)} row(s) whose foreign key points "
            f"nowhere ({shown}); rolled back, nothing was written"
        )


def _run_migrations(connection: Connection, sqlite: bool) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=sqlite,
        compare_type=True,
        # One transaction for the whole run on SQLite too, whose DDL is transactional:
        # a failed migration or key check leaves the database as it was.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        if sqlite:
            # pysqlite begins a transaction only before INSERT/UPDATE/DELETE: without this
            # BEGIN, each CREATE/DROP/ALTER would be committed on its own.
            connection.exec_driver_sql("BEGIN")
        context.run_migrations()
        if sqlite:
            _check_sqlite_foreign_keys(connection)


def _run(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        _run_migrations(connection, sqlite=False)
        return
    if connection.in_transaction():
        raise RuntimeError(
            "Tessera migrates SQLite on a connection outside any transaction "
            "(foreign keys must be turned off before it begins); commit first"
        )
    _set_sqlite_foreign_keys(connection, enabled=False)
    try:
        _run_migrations(connection, sqlite=True)
    finally:
        _set_sqlite_foreign_keys(connection, enabled=True)


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url
    engine = make_engine(url)
    try:
        with engine.connect() as new_connection:
            _run(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Tessera migrations run online only (tessera serve upgrades on start).")
run_migrations_online()
