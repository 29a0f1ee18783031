"""Brings the demo project to a labeling round, as the lead, over the public HTTP API.

That path runs the upload checks and sends the ingest and round jobs after their commits,
exactly as for a person; a service-level shortcut would have to repeat that dispatching.
Each step looks before it acts, so a start interrupted half-way resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from demo.accounts import ANNOTATOR_EMAIL, LEAD_EMAIL
from demo.environment import DEMO_MODEL
from demo.scenes import (
    PROJECT_MARK,
    PROJECT_NAME,
    demo_scenes,
    model_settings,
    png_bytes,
    project_body,
)


class DemoStopped(Exception):
    """The server is stopping; the seeding thread ends quietly."""


class DemoSeeder:
    """Logs in as the lead and makes what is missing of the demo project."""

    def __init__(
        self,
        api_url: str,
        password: str,
        stop: threading.Event,
        echo: Callable[[str], None],
        model: str = DEMO_MODEL,
    ) -> None:
        self.api_url = api_url
        self.password = password
        self.stop = stop
        self.echo = echo
        self.model = model
        self.client = httpx.Client(base_url=api_url, timeout=120)

    def close(self) -> None:
        self.client.close()

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise DemoStopped

    def _call(self, method: str, path: str, expect: tuple[int, ...], **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        if response.status_code not in expect:
            raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def wait_for_server(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.TransportError):
                if self.client.get("/health", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer at {self.api_url} in {timeout} s")
            self._sleep(0.2)

    def run(self) -> tuple[int, bool]:
        """Logs in, makes what is missing, waits for the newest round to be labeling or
        ended; returns the project id and whether a round is labeling."""
        self.wait_for_server()
        self._call(
            "POST", "/auth/login", (200,), json={"email": LEAD_EMAIL, "password": self.password}
        )
        project_id = self.ensure_project()
        rounds = self._call("GET", f"/projects/{project_id}/rounds", (200,))
        if not rounds:
            self.ensure_images(project_id)
            self.wait_for_ingest(project_id)
            started = self._call("POST", f"/projects/{project_id}/rounds", (202, 409))
            if started is not None and "round" in started:
                self.echo("demo: round 1 started (the first round queries random images)")
        return project_id, self.wait_for_latest_round(project_id)

    def ensure_project(self) -> int:
        for project in self._call("GET", "/projects", (200,)):
            # By its name, or by its description if the lead renamed it.
            if project["name"] == PROJECT_NAME or PROJECT_MARK in project["description"]:
                project_id = int(project["id"])
                wanted = model_settings(self.model)
                if any(project.get(name) != value for name, value in wanted.items()):
                    self._call("PATCH", f"/projects/{project_id}", (200,), json=wanted)
                    self.echo(
                        f"demo: the project's model is now {self.model} "
                        f"(encoder zoom {wanted['encoder_zoom']}, next round)"
                    )
                break
        else:
            description = f"Generated street-like scenes with exact ground truth {PROJECT_MARK}."
            body = project_body(PROJECT_NAME, description, self.model)
            project_id = int(self._call("POST", "/projects", (201,), json=body)["id"])
            self.echo(f"demo: created project {project_id} ({PROJECT_NAME!r})")
        members = self._call("GET", f"/projects/{project_id}/members", (200,))
        if ANNOTATOR_EMAIL not in {m["email"] for m in members}:
            self._call(
                "POST",
                f"/projects/{project_id}/members",
                (201, 409),
                json={"email": ANNOTATOR_EMAIL, "role": "annotator"},
            )
        return project_id

    def _images(self, project_id: int) -> list[dict[str, Any]]:
        images: list[dict[str, Any]] = []
        while True:
            page = self._call(
                "GET",
                f"/projects/{project_id}/images",
                (200,),
                params={"offset": len(images), "limit": 1000},
            )
            images += page
            if len(page) < 1000:
                return images

    def ensure_images(self, project_id: int) -> None:
        """Uploads the scenes that are missing (one request per split), then the ground
        truth of every image that has none."""
        scenes = demo_scenes()
        stored = {image["filename"]: image for image in self._images(project_id)}
        for split, rows in scenes.items():
            missing = [(name, image) for name, image, _ in rows if name not in stored]
            if missing:
                self.echo(f"demo: uploading {len(missing)} {split} images")
                files = [
                    ("files", (name, png_bytes(image), "image/png")) for name, image in missing
                ]
                self._call(
                    "POST",
                    f"/projects/{project_id}/images",
                    (201,),
                    files=files,
                    data={"split": split},
                )
        truths = {name: truth for rows in scenes.values() for name, _, truth in rows}
        for image in self._images(project_id):
            if image["has_ground_truth"] or image["filename"] not in truths:
                continue
            self._call(
                "PUT",
                f"/projects/{project_id}/images/{image['id']}/ground-truth",
                (200,),
                files={"file": ("truth.png", png_bytes(truths[image["filename"]]), "image/png")},
            )

    def wait_for_ingest(self, project_id: int) -> None:
        shown_at = 0.0
        while True:
            waiting = len(
                self._call(
                    "GET",
                    f"/projects/{project_id}/images",
                    (200,),
                    params={"status": "processing", "limit": 1000},
                )
            )
            if waiting == 0:
                self.echo("demo: superpixels of every image computed")
                return
            if time.monotonic() - shown_at > 5:
                self.echo(f"demo: the worker computes superpixels ({waiting} images to go)")
                shown_at = time.monotonic()
            self._sleep(0.5)

    def wait_for_latest_round(self, project_id: int) -> bool:
        """Until the newest round is labeling (True) or ended (False, and says so)."""
        shown = ""
        while True:
            rounds = self._call("GET", f"/projects/{project_id}/rounds", (200,))
            latest = max(rounds, key=lambda r: r["number"])
            status = latest["status"]
            if status == "labeling":
                return True
            if status in ("complete", "failed"):
                action = "starts the next one" if status == "complete" else "retries it"
                self.echo(
                    f"demo: round {latest['number']} is {status}; the lead {action} "
                    "from the dashboard"
                )
                return False
            if status != shown:
                self.echo(f"demo: round {latest['number']} {status}")
                shown = status
            self._sleep(0.5)
