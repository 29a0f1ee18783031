"""Images imported from the command line (no ingest job) still get their superpixels: the
worker's watchdog creates a catch-up ingest job for them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.worker.conftest import TESSERA, Api, Stack
from tests.worker.flows import wait_for_ingest, wait_for_job
from tests.worker.scenes import HEIGHT, WIDTH
from worker.simulation.synthetic import generate_scene


def test_images_imported_without_a_job_are_ingested(
    make_stack: Any, make_api: Any, tmp_path: Path
) -> None:
    stack: Stack = make_stack("sqlite", "embedded")
    api: Api = make_api(stack)
    project = api.post("/projects", expect=201, json={"name": "imported", "superpixel_size": 8})
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index in range(3):
        Image.fromarray(generate_scene(HEIGHT, WIDTH, rng)[0]).save(folder / f"{index}.png")
    done = subprocess.run(
        [str(TESSERA), "import", str(folder), "--project", str(project["id"])],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    base = f"/projects/{project['id']}"
    assert [i["status"] for i in api.get(f"{base}/images")] == ["processing"] * 3
    assert api.get(f"{base}/jobs") == []

    stack.start_worker()
    wait_for_ingest(api, stack, project["id"])
    [job] = api.get(f"{base}/jobs")
    assert job["kind"] == "ingest"
    wait_for_job(api, stack, project["id"], job["id"])
