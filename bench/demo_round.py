"""Seconds per round of the demo project, and how much of each picked image it asks for.

Builds the project ``tessera serve --demo`` makes (its generated scenes, settings and worker
defaults, ``worker/demo.py``) in a fresh SQLite database, starts ``tessera worker`` on the
embedded broker, and runs rounds 1..N with the oracle answering each (``exact``). For every
round after the first it prints the seconds spent training, scoring and querying (from the
round's status changes, polled every 0.1 s), the model's iterations and validation mIoU, and
per picked image the superpixels asked of those still open and the share of its pixels
asked. The same is done for each model given (default: the pretrained encoder, then the
U-Net from scratch as the baseline, in the same run), and the ratios printed.

    .venv/bin/python bench/demo_round.py [--rounds 3] [--models efficientnet_lite0,unet]
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from backend.app import create_app
from backend.auth.service import create_user, issue_token
from core.migrate import upgrade_database
from core.models import TokenKind
from core.settings import Settings
from worker.demo import DEMO_WORKER_DEFAULTS, PROJECT_SETTINGS, demo_scenes
from worker.simulation.synthetic import CLASSES


def png(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds of every process in process group ``group`` (the worker and
    its pool processes), from /proc: the work a round needs, whatever else runs here."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp; utime, stime, cutime, cstime follow at 11..14
            total += sum(int(value) for value in fields[11:15])
    return total / ticks


@dataclass
class RoundResult:
    number: int
    seconds: dict[str, float]
    cpu_seconds: float
    iterations: int | None
    max_iterations: int | None
    miou: float | None
    superpixel_shares: list[float] = field(default_factory=list)
    pixel_shares: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


class Run:
    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/api/v1{path}", headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json() if response.content else None

    def wait_job(self, project: int, job_id: int, round_id: int | None = None) -> dict[str, float]:
        """Seconds spent in each round status (or in the job) until the job ends."""
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


def run_model(model: str, rounds: int, env_base: dict[str, str]) -> tuple[list[RoundResult], str]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"tessera-demo-{model}-"))
    settings = Settings(data_dir=data_dir, secret_key="bench", task_queue="bench")
    upgrade_database(settings)
    app = create_app(settings)
    with app.state.session_factory() as session:
        user = create_user(session, "bench@example.org", "bench-password", is_admin=True)
        _, secret = issue_token(session, user, TokenKind.api, key="bench")
        session.commit()
    run = Run(TestClient(app), {"Authorization": f"Bearer {secret}"})
    classes = [
        {"name": c["name"], "colour": "#" + bytes(cast(list[int], c["color"])).hex()}
        for c in CLASSES
    ]
    body = {"name": "demo", "classes": classes, **PROJECT_SETTINGS, "model_architecture": model}
    project = run.call("POST", "/projects", 201, json=body)["id"]
    scenes = demo_scenes()
    for split, rows in scenes.items():
        files = [("files", (name, png(image))) for name, image, _ in rows]
        created = run.call(
            "POST", f"/projects/{project}/images", 201, files=files, data={"split": split}
        )["created"]
        for image, (_, _, truth) in zip(created, rows, strict=True):
            run.call(
                "PUT",
                f"/projects/{project}/images/{image['id']}/ground-truth",
                200,
                files={"file": ("m.png", png(truth))},
            )
    env = {**env_base, "TESSERA_DATA_DIR": str(data_dir), "TESSERA_TASK_QUEUE": "bench"}
    env.update(TESSERA_SECRET_KEY="bench", TESSERA_DATABASE_URL=settings.resolved_database_url)
    log = (data_dir / "worker.log").open("wb")
    clock = time.perf_counter()
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "tessera"), "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results: list[RoundResult] = []
    try:
        for job in run.call("GET", f"/projects/{project}/jobs", 200):
            run.wait_job(project, job["id"])
        ingest = f"worker start + ingest of {sum(len(r) for r in scenes.values())} images: " + (
            f"{time.perf_counter() - clock:.1f} s"
        )
        for number in range(1, rounds + 1):
            cpu_before = group_cpu_seconds(worker.pid)
            started = run.call("POST", f"/projects/{project}/rounds", 202)
            round_id = started["round"]["id"]
            spent = run.wait_job(project, started["job"]["id"], round_id)
            cpu = group_cpu_seconds(worker.pid) - cpu_before
            detail = run.call("GET", f"/projects/{project}/rounds/{round_id}", 200)
            models = run.call("GET", f"/projects/{project}/models", 200)
            metrics: dict[str, Any] = next(
                (m["metrics"] for m in models if m["round_id"] == round_id), {}
            )
            result = RoundResult(
                number,
                spent,
                cpu,
                metrics.get("iterations"),
                metrics.get("max_iterations"),
                metrics.get("miou"),
            )
            for query in detail["queries"]:
                labels = run.superpixel_map(project, query["image_id"], query["superpixel_map_id"])
                asked = np.isin(labels, query["superpixel_ids"])
                mask = run.client.get(
                    f"/api/v1/projects/{project}/images/{query['image_id']}/mask",
                    headers=run.headers,
                )
                known = np.asarray(Image.open(io.BytesIO(mask.content))) != 255
                open_ids = np.unique(labels[~known]) if (~known).any() else np.array([])
                result.superpixel_shares.append(
                    len(query["superpixel_ids"]) / max(len(open_ids), 1)
                )
                result.pixel_shares.append(float(asked.mean()))
            results.append(result)
            oracle = run.call("POST", f"/projects/{project}/rounds/{round_id}/oracle", 202, json={})
            run.wait_job(project, oracle["id"])
            run.call("POST", f"/projects/{project}/rounds/{round_id}/close", 200)
    finally:
        worker.terminate()  # the main process stops its pool processes
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    return results, ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="efficientnet_lite0,unet")
    args = parser.parse_args()
    env_base = {k: v for k, v in os.environ.items() if k != "TESSERA_BROKER_URL"}
    for name, value in DEMO_WORKER_DEFAULTS.items():
        env_base.setdefault(name, value)
    env_base["TESSERA_LOG_LEVEL"] = "info"
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("worker settings:", {k: v for k, v in env_base.items() if k.startswith("TESSERA_")})
    totals: dict[str, float] = {}
    cpu_totals: dict[str, float] = {}
    for model in args.models.split(","):
        results, ingest = run_model(model, args.rounds, env_base)
        print(f"\n== {model}: {ingest}")
        print(
            "round | train s | score s | query s | round s | worker CPU s | iterations | "
            "val mIoU | asked per picked image: superpixels of open ones, pixel share"
        )
        for r in results:
            shares = ", ".join(
                f"{s:.0%}/{p:.0%}" for s, p in zip(r.superpixel_shares, r.pixel_shares, strict=True)
            )
            miou = "" if r.miou is None else f"{r.miou:.3f}"
            its = "" if r.iterations is None else f"{r.iterations}/{r.max_iterations}"
            print(
                f"{r.number:5d} | {r.seconds.get('training', 0):7.1f} | "
                f"{r.seconds.get('scoring', 0):7.1f} | {r.seconds.get('querying', 0):7.1f} | "
                f"{r.total:7.1f} | {r.cpu_seconds:12.1f} | {its:>10} | {miou:>8} | {shares}"
            )
        later = [r for r in results if r.number > 1]
        if later:
            totals[model] = statistics.mean(r.total for r in later)
            pixel = [p for r in later for p in r.pixel_shares]
            cpu = cpu_totals[model] = statistics.mean(r.cpu_seconds for r in later)
            print(
                f"{model}: mean round (train + score + query) {totals[model]:.1f} s wall, "
                f"{cpu:.1f} s of worker CPU time; picked "
                f"images' pixel share asked: mean {statistics.mean(pixel):.0%}, "
                f"max {max(pixel):.0%}; load average now {os.getloadavg()[0]:.1f}"
            )
    if len(totals) == 2:
        (a, ta), (b, tb) = totals.items()
        print(f"\nround time ratio {a}/{b}: {ta / tb:.2f} wall (the load may differ between them)")
        print(f"worker CPU time ratio {a}/{b}: {cpu_totals[a] / cpu_totals[b]:.2f}")


if __name__ == "__main__":
    main()
