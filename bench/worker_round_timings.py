"""Seconds per step of a service round, measured end to end through a real worker.

Uploads CamVid images (resized) or generated scenes to a fresh SQLite project, starts
``tessera worker`` on the embedded broker, then times: ingest, round 1 (random initial),
the oracle's answers, and round 2's training, scoring and querying (from the round's status
changes, polled every 0.1 s). Prints one table row per step.

    .venv/bin/python bench/worker_round_timings.py --camvid ../shared/datasets/camvid \
        --pool 100 --validation 20 --scale 0.5
    .venv/bin/python bench/worker_round_timings.py --scenes   # the tests' project

The worker's hyper-parameters come from the environment (TESSERA_MODEL_WIDTH, ...).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from backend.app import create_app
from backend.auth.service import create_user, issue_token
from core.migrate import upgrade_database
from core.models import TokenKind
from core.settings import Settings
from worker.simulation.synthetic import CLASSES, generate_scene

Scene = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]


def png(array: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def camvid(root: Path, split: str, count: int, scale: float) -> tuple[list[Scene], list[str]]:
    meta = json.loads((root / "classes.json").read_text())
    names = [c["name"] for c in meta["classes"]]
    scenes = []
    for path in sorted((root / split / "images").glob("*.jpg"))[:count]:
        image = Image.open(path).convert("RGB")
        mask = Image.open(root / split / "masks" / f"{path.stem}.png")
        size = (round(image.width * scale), round(image.height * scale))
        pixels = np.asarray(image.resize(size, Image.Resampling.BILINEAR))
        labels = np.asarray(mask.resize(size, Image.Resampling.NEAREST)).copy()
        labels[labels == meta["ignore_index"]] = 255
        scenes.append((pixels, labels))
    return scenes, names


class Run:
    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/api/v1{path}", headers=self.headers, **kwargs)
        assert response.status_code == expect, response.text
        return response.json()

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--camvid", type=Path)
    parser.add_argument("--scenes", action="store_true")
    parser.add_argument("--pool", type=int, default=10)
    parser.add_argument("--validation", type=int, default=4)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--superpixel-size", type=int, default=8)
    parser.add_argument("--mc-samples", type=int, default=4)
    parser.add_argument("--initial-images", type=int, default=4)
    parser.add_argument("--images-per-round", type=int, default=4)
    args = parser.parse_args()
    if args.camvid:
        pool, names = camvid(args.camvid, "train", args.pool, args.scale)
        validation, _ = camvid(args.camvid, "val", args.validation, args.scale)
    else:
        rng = np.random.default_rng(0)
        pool = [generate_scene(48, 64, rng) for _ in range(args.pool)]
        validation = [generate_scene(48, 64, rng) for _ in range(args.validation)]
        names = [c["name"] for c in CLASSES]

    data_dir = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    settings = Settings(data_dir=data_dir, secret_key="bench", task_queue="bench")
    upgrade_database(settings)
    app = create_app(settings)
    with app.state.session_factory() as session:
        user = create_user(session, "bench@example.org", "bench-password", is_admin=True)
        _, secret = issue_token(session, user, TokenKind.api, key="bench")
        session.commit()
    run = Run(TestClient(app), {"Authorization": f"Bearer {secret}"})
    colours = [f"#{i * 0x101010 + 0x102030:06x}" for i in range(len(names))]
    project = run.call(
        "POST",
        "/projects",
        201,
        json={
            "name": "bench",
            "classes": [{"name": n, "colour": c} for n, c in zip(names, colours, strict=True)],
            "superpixel_size": args.superpixel_size,
            "mc_samples": args.mc_samples,
            "initial_images": args.initial_images,
            "images_per_round": args.images_per_round,
        },
    )["id"]
    rows: list[tuple[str, float]] = []
    clock = time.perf_counter()
    for split, scenes in (("pool", pool), ("validation", validation)):
        files = [("files", (f"{split}{i}.png", png(image))) for i, (image, _) in enumerate(scenes)]
        created = run.call(
            "POST", f"/projects/{project}/images", 201, files=files, data={"split": split}
        )["created"]
        for image, (_, mask) in zip(created, scenes, strict=True):
            run.call(
                "PUT",
                f"/projects/{project}/images/{image['id']}/ground-truth",
                200,
                files={"file": ("m.png", png(mask))},
            )
    rows.append(("upload + ground truth (API)", time.perf_counter() - clock))

    env = {k: v for k, v in os.environ.items() if k != "TESSERA_BROKER_URL"}
    env.update(
        TESSERA_DATA_DIR=str(data_dir),
        TESSERA_TASK_QUEUE="bench",
        TESSERA_SECRET_KEY="bench",
        TESSERA_DATABASE_URL=settings.resolved_database_url,
    )
    log = (data_dir / "worker.log").open("wb")
    clock = time.perf_counter()
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "tessera"), "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        for job in run.call("GET", f"/projects/{project}/jobs", 200):
            run.wait_job(project, job["id"])
        rows.append(("worker start + ingest (superpixels)", time.perf_counter() - clock))
        for number in (1, 2):
            started = run.call("POST", f"/projects/{project}/rounds", 202)
            round_id = started["round"]["id"]
            spent = run.wait_job(project, started["job"]["id"], round_id)
            rows += [(f"round {number}: {state}", s) for state, s in spent.items()]
            if number == 1:
                clock = time.perf_counter()
                oracle = run.call(
                    "POST", f"/projects/{project}/rounds/{round_id}/oracle", 202, json={}
                )
                run.wait_job(project, oracle["id"])
                rows.append(("round 1: oracle answers", time.perf_counter() - clock))
                run.call("POST", f"/projects/{project}/rounds/{round_id}/close", 200)
        model = run.call("GET", f"/projects/{project}/models", 200)[-1]
        detail = run.call("GET", f"/projects/{project}/rounds/{round_id}", 200)
    finally:
        worker.terminate()  # the main process stops its pool processes
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    shape = pool[0][0].shape
    print(
        f"pool {len(pool)} + validation {len(validation)} images of {shape[1]}x{shape[0]}, "
        f"superpixel size {args.superpixel_size}, T = {args.mc_samples}"
    )
    for name, seconds in rows:
        print(f"{name:40s} {seconds:8.1f} s")
    metrics = model["metrics"]
    print(
        f"model: {metrics['iterations']} iterations, val mIoU "
        f"{metrics.get('miou', float('nan')):.3f}, training {metrics['seconds']} s"
    )
    print("round 2 superpixels per image:", [len(q["superpixel_ids"]) for q in detail["queries"]])


if __name__ == "__main__":
    main()
