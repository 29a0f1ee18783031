"""``tessera serve --demo`` as a visitor meets it: one command, then paint in Chromium.

The demo runs as a subprocess (API + its own ``tessera worker``) on a fresh data directory
with the embedded SQLite database and file broker. The annotator logs in with the printed
password, fills a queried superpixel and submits; the lead lets the oracle answer the rest
of round 1, closes it and starts round 2, whose queries the annotator then sees. Ctrl-C
stops everything with no process left, and a second start reuses the data.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image as PILImage
from playwright.sync_api import Page, expect

from demo.accounts import ANNOTATOR_EMAIL, LEAD_EMAIL
from demo.environment import STATE_FILE
from demo.run import READY_LINE
from tests.e2e.server import REPO, free_port, process_env
from tests.e2e.workspace_page import WorkspacePage, interior_point, log_in, wait_paintable

# Smaller than the demo's own defaults: the test needs the loop, not a good model.
TEST_MODEL = {
    "TESSERA_TRAIN_ITERATIONS": "20",
    "TESSERA_FINETUNE_ITERATIONS": "10",
}
# Ingest computes the pretrained encoder's features of all 50 scenes before round 1 is asked;
# ready to paint took 60 s at load average 12-14 (the demo's one torch thread), and ingest
# alone 250-330 s at load 20-50 with two threads: the timeouts leave room for a busy machine.
READY_TIMEOUT = 600.0
ROUND_TIMEOUT = 600.0


def _process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, session id, state) of every process, read from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the fields after it do not.
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[3]), fields[0])
    return table


def descendants(pid: int) -> set[int]:
    table = _process_table()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, (parent, _, _) in table.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (zombies waiting to be reaped do not count)."""
    table = _process_table()
    return {pid for pid in pids if pid in table and table[pid][2] != "Z"}


@dataclass
class DemoProcess:
    data_dir: Path
    log_path: Path
    port: int
    process: subprocess.Popen[bytes]
    started_at: float
    ready_after: float | None = None
    state: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls, data_dir: Path, log_path: Path) -> DemoProcess:
        port = free_port()
        env = process_env({"TESSERA_DATA_DIR": str(data_dir), **TEST_MODEL})
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from tessera.cli import main; main()",
                    "serve",
                    "--demo",
                    "--port",
                    str(port),
                ],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return cls(data_dir, log_path, port, process, time.monotonic())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_log(self) -> str:
        path = self.data_dir / "demo-worker.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def fail(self, why: str) -> None:
        pytest.fail(f"{why}\n--- serve\n{self.output()}\n--- worker\n{self.worker_log()}")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.output():
            if self.process.poll() is not None:
                self.fail(f"tessera serve --demo exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.fail(f"the demo was not ready to paint in {timeout} s")
            time.sleep(0.2)
        self.ready_after = time.monotonic() - self.started_at
        self.state = json.loads((self.data_dir / STATE_FILE).read_text())

    def stop(self, stop_signal: signal.Signals, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(stop_signal)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"tessera serve --demo did not stop within {timeout} s of {stop_signal.name}")
            raise

    def kill(self) -> None:
        """Teardown after a failure: the server and every process it started."""
        for pid in descendants(self.process.pid) | {self.process.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def client(self, email: str) -> httpx.Client:
        password = self.state["lead_password" if email == LEAD_EMAIL else "annotator_password"]
        client = httpx.Client(base_url=f"{self.base_url}/api/v1", timeout=60)
        client.post("/auth/login", json={"email": email, "password": password}).raise_for_status()
        return client


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo")


@pytest.fixture(scope="module")
def demo(demo_dir: Path, frontend_dist: Path) -> Iterator[DemoProcess]:
    """The first start, on an empty data directory; stopped by a test or at the end."""
    running = DemoProcess.start(demo_dir / "data", demo_dir / "serve-1.log")
    try:
        running.wait_ready()
        print(f"demo ready to paint {running.ready_after:.1f} s after tessera serve --demo started")
        yield running
    finally:
        if running.process.poll() is None:
            running.kill()


def _get(client: httpx.Client, path: str, **kwargs: Any) -> Any:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(client: httpx.Client, path: str, done: Any, timeout: float, demo: DemoProcess) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = _get(client, path)
        if done(value):
            return value
        if time.monotonic() > deadline:
            demo.fail(f"timed out waiting on {path}: {value}")
        time.sleep(0.5)


def superpixel_labels(client: httpx.Client, project: int, query: dict[str, Any]) -> NDArray[Any]:
    response = client.get(
        f"/projects/{project}/images/{query['image_id']}/superpixels",
        params={"map_id": query["superpixel_map_id"]},
    )
    assert response.status_code == 200, response.text
    height = int(response.headers["X-Superpixel-Height"])
    width = int(response.headers["X-Superpixel-Width"])
    dtype = np.dtype(response.headers["X-Superpixel-Dtype"]).newbyteorder("<")
    raw = zlib.decompress(response.content)
    return np.frombuffer(raw, dtype=dtype).reshape(height, width)


def stored_mask(client: httpx.Client, project: int, image_id: int) -> NDArray[np.uint8]:
    response = client.get(f"/projects/{project}/images/{image_id}/mask")
    assert response.status_code == 200, response.text
    with PILImage.open(io.BytesIO(response.content)) as decoded:
        return np.asarray(decoded, dtype=np.uint8)


def test_demo_annotator_paints_and_sees_next_rounds_queries_after_an_oracle_round(
    demo: DemoProcess, page: Page, artifacts: Path
) -> None:
    printed = demo.output()
    assert demo.base_url in printed
    for email, key in ((ANNOTATOR_EMAIL, "annotator_password"), (LEAD_EMAIL, "lead_password")):
        assert email in printed and demo.state[key] in printed
    lead = demo.client(LEAD_EMAIL)
    (project,) = _get(lead, "/projects")
    project_id = int(project["id"])
    (first_round,) = _get(lead, f"/projects/{project_id}/rounds")
    assert first_round["status"] == "labeling"
    round_one = _get(lead, f"/projects/{project_id}/rounds/{first_round['id']}")
    assert len(round_one["queries"]) == 4  # the demo's initial images

    # The annotator logs in with the printed password and lands on a queried image.
    log_in(page, demo.base_url, ANNOTATOR_EMAIL, demo.state["annotator_password"])
    page.wait_for_url(f"**/projects/{project_id}/label")
    query_id = wait_paintable(page)
    query = next(q for q in round_one["queries"] if q["id"] == query_id)
    expect(page.locator(".crumb")).to_contain_text("round 1")
    labels = superpixel_labels(lead, project_id, query)
    height, width = labels.shape
    workspace = WorkspacePage(page, width, height)
    assert workspace.progress() == (0, len(query["superpixel_ids"]))

    # Fill the roomiest queried superpixel with class 1 ("sky", index 0), then submit.
    depth = {s: interior_point(labels == s)[2] for s in query["superpixel_ids"]}
    superpixel = max(depth, key=lambda s: depth[s])
    x, y, _ = interior_point(labels == superpixel)
    workspace.press("1")
    workspace.click(x, y)
    assert workspace.progress()[0] == 1
    page.screenshot(path=str(artifacts / "demo-painted.png"))
    page.wait_for_timeout(300)
    workspace.press("Enter")
    expect(page.locator('[data-modal="confirm-submit"]')).to_be_visible()
    workspace.press("Enter")
    wait_paintable(page, previous=str(query_id))  # the next image of round 1

    mask = stored_mask(lead, project_id, query["image_id"])
    assert (mask[labels == superpixel] == 0).all()
    assert int((mask != 255).sum()) == int((labels == superpixel).sum())

    # The lead lets the oracle answer the rest of round 1, closes it and starts round 2.
    base = f"/projects/{project_id}"
    oracle = lead.post(f"{base}/rounds/{first_round['id']}/oracle", json={"mode": "exact"})
    assert oracle.status_code == 202, oracle.text
    job = wait_for(
        lead,
        f"{base}/jobs/{oracle.json()['id']}",
        lambda j: j["status"] in ("succeeded", "failed"),
        120,
        demo,
    )
    assert job["status"] == "succeeded", job["error"]
    closed = lead.post(f"{base}/rounds/{first_round['id']}/close")
    assert closed.status_code == 200, closed.text
    started = lead.post(f"{base}/rounds")
    assert started.status_code == 202, started.text
    round_started = time.monotonic()
    job = wait_for(
        lead,
        f"{base}/jobs/{started.json()['job']['id']}",
        lambda j: j["status"] in ("succeeded", "failed"),
        ROUND_TIMEOUT,
        demo,
    )
    assert job["status"] == "succeeded", job["error"]
    round_two = wait_for(
        lead,
        f"{base}/rounds/{started.json()['round']['id']}",
        lambda r: r["status"] != "scoring" and r["status"] != "querying",
        60,
        demo,
    )
    print(f"round 2 took {time.monotonic() - round_started:.1f} s")
    assert round_two["status"] == "labeling"
    assert round_two["number"] == 2 and round_two["model_ids"]
    queried_in_round_two = {q["id"] for q in round_two["queries"]}
    assert queried_in_round_two

    # The annotator's next task is a query of round 2.
    page.reload()
    next_query = wait_paintable(page)
    assert next_query in queried_in_round_two
    expect(page.locator(".crumb")).to_contain_text("round 2")
    page.screenshot(path=str(artifacts / "demo-round-2.png"))
    lead.close()


def test_demo_ctrl_c_stops_the_server_and_worker_with_no_process_left(
    demo: DemoProcess,
) -> None:
    children = descendants(demo.process.pid)
    assert len(children) >= 2, "expected the worker and its pool process"
    began = time.monotonic()
    assert demo.stop(signal.SIGINT) == 0, demo.output()
    print(f"stopped in {time.monotonic() - began:.1f} s")
    assert "Tessera demo stopped." in demo.output()
    assert not alive(children), f"left running: {alive(children)}"


def test_second_demo_start_reuses_the_data(demo: DemoProcess, demo_dir: Path) -> None:
    if demo.process.poll() is None:
        demo.stop(signal.SIGINT)
    database = demo.data_dir / "tessera.db"

    def counts() -> tuple[list[int], int, int, int]:
        with sqlite3.connect(database) as connection:
            projects = [row[0] for row in connection.execute("SELECT id FROM projects")]
            users = connection.execute("SELECT count(*) FROM users").fetchone()[0]
            rounds = connection.execute("SELECT count(*) FROM rounds").fetchone()[0]
            images = connection.execute("SELECT count(*) FROM images").fetchone()[0]
        return projects, users, rounds, images

    before = counts()
    again = DemoProcess.start(demo.data_dir, demo_dir / "serve-2.log")
    try:
        again.wait_ready(timeout=120)
        assert again.state == demo.state  # the same logins, printed again
        assert again.state["annotator_password"] in again.output()
        assert "created project" not in again.output()
        lead = again.client(LEAD_EMAIL)
        assert [p["id"] for p in _get(lead, "/projects")] == before[0]
        lead.close()
        children = descendants(again.process.pid)
        assert again.stop(signal.SIGTERM) == 0, again.output()
        assert not alive(children), f"left running: {alive(children)}"
    finally:
        if again.process.poll() is None:
            again.kill()
    assert counts() == before
    assert len(before[0]) == 1


def test_killed_demo_server_takes_its_worker_and_pool_with_it(
    demo: DemoProcess, demo_dir: Path
) -> None:
    if demo.process.poll() is None:
        demo.stop(signal.SIGINT)
    again = DemoProcess.start(demo.data_dir, demo_dir / "serve-3.log")
    children: set[int] = set()
    try:
        again.wait_ready(timeout=120)
        deadline = time.monotonic() + 60
        while len(descendants(again.process.pid)) < 2:  # the worker and its pool process
            assert time.monotonic() < deadline, again.worker_log()
            time.sleep(0.2)
        children = descendants(again.process.pid)
        again.process.kill()  # no chance to stop anything: the kernel's parent-death signal
        again.process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive(children), f"left running: {alive(children)}"
    finally:
        if again.process.poll() is None:
            again.kill()
        for pid in alive(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
