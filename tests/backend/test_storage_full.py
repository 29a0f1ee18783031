"""A full disk gives 507 with a clear message and nothing half-written; an upload whose
superpixel job cannot be queued is not a 201.

The database's own "full" errors are real: SQLite's SQLITE_FULL from a database that may not
grow (``PRAGMA max_page_count``), PostgreSQL's SQLSTATE 53100 raised where its storage would
raise it (a trigger on the write). File writes meet a real ENOSPC from ``/dev/full``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import SpooledTemporaryFile
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.models import Annotation, AnnotationSubmission, Image, Job, JobStatus
from core.storage import StorageFull, disk_full_cause, write_file_atomically
from tests.backend.builders import Account, World, png_bytes

WIDTH, HEIGHT, CELL = 400, 304, 8


def _noise_png(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return png_bytes(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@contextmanager
def _full_database(engine: Engine) -> Iterator[None]:
    """The database refuses to grow (SQLite) or reports a full disk on writes (PostgreSQL)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("VACUUM")  # no free pages left to reuse
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        engine.dispose()

        def limit(dbapi_connection: Any, _record: object) -> None:
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

        event.listen(engine, "connect", limit)
        try:
            yield
        finally:
            event.remove(engine, "connect", limit)
            engine.dispose()
        return
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION tessera_test_disk_full() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'could not extend file: No space left on device' "
                "USING ERRCODE = 'disk_full'; END $$ LANGUAGE plpgsql"
            )
        )
        for table in ("images", "annotations"):
            connection.execute(
                text(
                    f"CREATE TRIGGER tessera_test_disk_full BEFORE INSERT OR UPDATE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION tessera_test_disk_full()"
                )
            )
    try:
        yield
    finally:
        with engine.begin() as connection:
            for table in ("images", "annotations"):
                connection.execute(text(f"DROP TRIGGER tessera_test_disk_full ON {table}"))
            connection.execute(text("DROP FUNCTION tessera_test_disk_full()"))


def _counts(factory: sessionmaker[Session]) -> tuple[int, ...]:
    with factory() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Image, Annotation, AnnotationSubmission, Job)
        )


def _assert_507(response: Any) -> None:
    assert response.status_code == 507, response.text
    assert "storage is full" in response.json()["detail"]
    assert "nothing of this request" in response.json()["detail"]


def test_an_upload_on_a_full_disk_answers_507_and_stores_nothing(
    app: FastAPI, client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    before = _counts(session_factory)
    with _full_database(app.state.engine):
        response = client.post(
            f"/api/v1/projects/{project}/images",
            files=[("files", ("noise.png", _noise_png(400, 300, 1), "image/png"))],
            headers=lead.headers,
        )
    _assert_507(response)
    assert _counts(session_factory) == before
    # With space again, the same upload goes through.
    again = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", ("noise.png", _noise_png(400, 300, 1), "image/png"))],
        headers=lead.headers,
    )
    assert again.status_code == 201, again.text


def test_a_mask_save_on_a_full_disk_keeps_the_stored_version(
    app: FastAPI, client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    # Large enough that the new version needs pages the database may not add.
    image = world.image(project, width=WIDTH, height=HEIGHT)
    world.superpixel_grid(image, cell=CELL)
    world.query(world.round(project), image, list(range((WIDTH // CELL) * (HEIGHT // CELL))))
    mask = np.random.default_rng(4).integers(0, 2, (HEIGHT, WIDTH), dtype=np.uint8)
    url = f"/api/v1/projects/{project}/images/{image}/mask"
    headers = {**lead.headers, "If-Match": '"0"', "Content-Type": "image/png"}
    before = _counts(session_factory)
    with _full_database(app.state.engine):
        response = client.put(url, content=png_bytes(mask), headers=headers)
    _assert_507(response)
    assert _counts(session_factory) == before
    assert client.get(url, headers=lead.headers).headers["etag"] == '"0"'
    assert client.put(url, content=png_bytes(mask), headers=headers).status_code == 200


class _FullSpool(SpooledTemporaryFile[bytes]):
    """Starlette's upload spool on a full disk: moving past memory to a file fails."""

    def rollover(self) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_spool_disk_during_an_upload_answers_507(
    client: TestClient,
    world: World,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lead = world.user("lead@example.org")
    project = world.project(lead)
    monkeypatch.setattr("starlette.formparsers.SpooledTemporaryFile", _FullSpool)
    big = _noise_png(800, 600, 2)  # over the 1 MB Starlette keeps in memory
    assert len(big) > 1024 * 1024
    response = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", ("big.png", big, "image/png"))],
        headers=lead.headers,
    )
    _assert_507(response)
    assert _counts(session_factory) == (0, 0, 0, 0)


def test_a_file_write_on_a_full_device_leaves_no_part_of_it(tmp_path: Path) -> None:
    target = tmp_path / "message.msg"
    # The staging name the writer uses, pointed at a device that is always full.
    staging = tmp_path / f".message.msg.{os.getpid()}.partial"
    staging.symlink_to("/dev/full")
    with pytest.raises(StorageFull) as raised:
        write_file_atomically(target, b"x" * 100_000)
    assert disk_full_cause(raised.value) is not None
    assert sorted(tmp_path.iterdir()) == []
    write_file_atomically(target, b"complete")
    assert target.read_bytes() == b"complete"


def test_disk_full_is_recognized_in_every_form_and_nothing_else() -> None:
    with pytest.raises(OSError) as device, open("/dev/full", "wb") as handle:
        handle.write(b"x")
        handle.flush()
    assert disk_full_cause(device.value) is device.value
    wrapped = RuntimeError("while saving")
    wrapped.__cause__ = device.value
    assert disk_full_cause(wrapped) is device.value
    assert disk_full_cause(OSError(errno.EACCES, "denied")) is None
    assert disk_full_cause(ValueError("bad input")) is None


# --- an upload whose superpixel job cannot be queued -------------------------------------


def test_an_upload_whose_job_cannot_be_queued_answers_503_naming_the_job(
    app: FastAPI, client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    lead: Account = world.user("lead@example.org")
    project = world.project(lead)
    app.state.settings = app.state.settings.model_copy(
        update={"broker_url": "redis://127.0.0.1:1/0"}
    )
    response = client.post(
        f"/api/v1/projects/{project}/images",
        files=[("files", ("a.png", _noise_png(40, 30, 3), "image/png"))],
        headers=lead.headers,
    )
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "were stored" in detail and "retries the job" in detail
    with session_factory() as session:
        [job] = session.scalars(select(Job))
        [image] = session.scalars(select(Image))
        assert job.status == JobStatus.failed
        assert f"job {job.id}" in detail
        assert image.status.value == "processing"
    # The lead's retry, with the broker back, queues it.
    app.state.settings = app.state.settings.model_copy(
        update={"broker_url": world.settings.broker_url}
    )
    retried = client.post(f"/api/v1/projects/{project}/jobs/{job.id}/retry", headers=lead.headers)
    assert retried.status_code in (200, 202), retried.text
    assert retried.json()["status"] == "queued"
