"""The real services tests use: fresh PostgreSQL databases and free loopback ports."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_database(prefix: str = "tessera_test") -> Iterator[str]:
    """A new empty PostgreSQL database, dropped (connections forced out) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_database(kind: str, directory: Path, prefix: str = "tessera_test") -> Iterator[str]:
    """A new empty database: a SQLite file in ``directory``, or a PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'tessera.db'}"
        return
    with postgres_database(prefix) as url:
        yield url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
