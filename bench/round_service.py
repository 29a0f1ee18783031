"""A fresh Tessera service for the round benchmarks (``demo_round.py``,
``worker_round_timings.py``): SQLite and the embedded broker in a temporary data directory,
the app in-process behind a TestClient with an administrator's token, and one
``tessera worker`` subprocess; uploads, job polling and the round loop's HTTP calls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.auth.service import create_user, issue_token
from core.migrate import upgrade_database
from core.models import TokenKind
from core.settings import Settings
from demo.scenes import png_bytes

# (filename, (H, W, 3) uint8 image, (H, W) uint8 ground truth)
Scene = tuple[str, np.ndarray[Any, Any], np.ndarray[Any, Any]]


class BenchService:
    """Use as a context manager: the worker is stopped on the way out."""

    def __init__(self, prefix: str) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix=prefix))
        # The in-process API logs warnings only: an access line per poll would bury the table.
        self.settings = Settings(
            data_dir=self.data_dir, secret_key="bench", task_queue="bench", log_level="warning"
        )
        upgrade_database(self.settings)
        app = create_app(self.settings)
        with app.state.session_factory() as session:
            user = create_user(session, "bench@example.org", "bench-password", is_admin=True)
            _, secret = issue_token(session, user, TokenKind.api, key="bench")
            session.commit()
        self.client = TestClient(app)
        self.headers = {"Authorization": f"Bearer {secret}"}
        self.worker: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BenchService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_worker()

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/api/v1{path}", headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def create_project(self, body: Mapping[str, Any]) -> int:
        return int(self.call("POST", "/projects", 201, json=dict(body))["id"])

    def upload(self, project: int, split: str, scenes: Sequence[Scene]) -> None:
        """The images of one split in one request, then each one's ground truth."""
        files = [("files", (name, png_bytes(image))) for name, image, _ in scenes]
        created = self.call(
            "POST", f"/projects/{project}/images", 201, files=files, data={"split": split}
        )["created"]
        for image, (_, _, truth) in zip(created, scenes, strict=True):
            self.call(
                "PUT",
                f"/projects/{project}/images/{image['id']}/ground-truth",
                200,
                files={"file": ("m.png", png_bytes(truth))},
            )

    def start_worker(self, environ: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """``tessera worker`` on this service's database and broker, in its own process group
        (its pool processes share it: ``group_cpu_seconds`` reads them all)."""
        env = {k: v for k, v in environ.items() if k != "TESSERA_BROKER_URL"}
        env.update(
            TESSERA_DATA_DIR=str(self.data_dir),
            TESSERA_TASK_QUEUE="bench",
            TESSERA_SECRET_KEY="bench",
            TESSERA_DATABASE_URL=self.settings.resolved_database_url,
        )
        with (self.data_dir / "worker.log").open("wb") as log:
            self.worker = subprocess.Popen(
                [str(Path(sys.executable).parent / "tessera"), "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self.worker

    def stop_worker(self) -> None:
        if self.worker is None:
            return
        self.worker.terminate()  # the main process stops its pool processes
        try:
            self.worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait()
        self.worker = None

    def wait_job(self, project: int, job_id: int, round_id: int | None = None) -> dict[str, float]:
        """Seconds spent in each round status (or in the job) until the job ends, polled
        every 0.1 s."""
        spent: dict[str, float] = {}
        last, since = "", time.perf_counter()
        while True:
            job = self.call("GET", f"/projects/{project}/jobs/{job_id}", 200)
            state = job["status"]
            if round_id is not None and state == "running":
                state = self.call("GET", f"/projects/{project}/rounds/{round_id}", 200)["status"]
            now = time.perf_counter()
            if state != last:
                if last:
                    spent[last] = spent.get(last, 0.0) + now - since
                last, since = state, now
            if job["status"] in ("succeeded", "failed"):
                assert job["status"] == "succeeded", job["error"]
                return spent
            time.sleep(0.1)

    def wait_for_jobs(self, project: int) -> None:
        """Until every job the project has so far (the uploads' ingest) has ended."""
        for job in self.call("GET", f"/projects/{project}/jobs", 200):
            self.wait_job(project, job["id"])

    def run_round(self, project: int) -> tuple[int, dict[str, float]]:
        """Starts the next round and waits for it; its id and seconds per status."""
        started = self.call("POST", f"/projects/{project}/rounds", 202)
        round_id = int(started["round"]["id"])
        return round_id, self.wait_job(project, started["job"]["id"], round_id)

    def answer_and_close(self, project: int, round_id: int) -> float:
        """The oracle answers the round's queries (exact), then the round is closed; the
        oracle's seconds."""
        clock = time.perf_counter()
        oracle = self.call("POST", f"/projects/{project}/rounds/{round_id}/oracle", 202, json={})
        self.wait_job(project, oracle["id"])
        seconds = time.perf_counter() - clock
        self.call("POST", f"/projects/{project}/rounds/{round_id}/close", 200)
        return seconds

    def superpixel_map(self, project: int, image_id: int, map_id: int) -> np.ndarray[Any, Any]:
        response = self.client.get(
            f"/api/v1/projects/{project}/images/{image_id}/superpixels",
            params={"map_id": map_id},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        shape = (
            int(response.headers["X-Superpixel-Height"]),
            int(response.headers["X-Superpixel-Width"]),
        )
        dtype = np.dtype(response.headers["X-Superpixel-Dtype"]).newbyteorder("<")
        return np.frombuffer(zlib.decompress(response.content), dtype=dtype).reshape(shape)
