"""``tessera serve --demo``: the API, a worker subprocess and a ready-to-paint demo project.

Everything runs on one machine with nothing else installed: the SQLite database and the
embedded file broker under ``TESSERA_DATA_DIR`` (unless the user points ``TESSERA_*`` at
others). On first start the demo makes two accounts (a lead and an annotator, random
passwords kept in ``<data_dir>/demo.json``) and a project of generated street-like scenes
with exact ground truth (``worker/simulation/synthetic.py``, no download), and starts the
first round; once the worker has queried it (seconds), the annotator can paint. A later
start finds all of it and creates nothing.

Accounts are made with the same service function as ``tessera user add`` (the API has no
sign-up, and the first account cannot be made through it); everything else goes through
the public HTTP API as the lead would, from a background thread once the server answers.
That path runs the upload checks and sends the ingest and round jobs after their commits,
exactly as for a person; a service-level shortcut would have to repeat that dispatching.
Each step looks before it acts, so a start interrupted half-way resumes where it stopped.

Importing this module loads no torch (``backend/commands/serve.py`` imports it lazily).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, cast

import click
import httpx
import numpy as np
import uvicorn
from numpy.typing import NDArray
from PIL import Image as PILImage
from sqlalchemy import select

from backend.app import create_app
from backend.auth.service import create_user, hash_password, normalize_email, password_hasher
from core.db import make_engine, make_session_factory
from core.models import User
from core.settings import Settings, get_settings
from worker.parent_death import die_with
from worker.simulation.synthetic import CLASSES, generate_scene

# Worker settings small enough for a CPU (a round well under a minute on two busy cores),
# applied only where the user has not set the variable. DESIGN.md §6's GPU defaults would
# take tens of minutes per round on a laptop.
DEMO_WORKER_DEFAULTS: dict[str, str] = {
    "TESSERA_MODEL_WIDTH": "8",
    "TESSERA_MODEL_DEPTH": "3",
    "TESSERA_TRAIN_ITERATIONS": "30",
    "TESSERA_FINETUNE_ITERATIONS": "15",
    "TESSERA_TRAIN_BATCH_SIZE": "4",
    "TESSERA_TRAIN_CROP_SIZE": "96",
    "TESSERA_LEARNING_RATE": "0.003",
    # A job lost with a killed worker is taken over 20 s after its last heartbeat, not 60.
    "TESSERA_JOB_LEASE_SECONDS": "20",
    # The console shows the demo's own lines; the worker logs to a file at info.
    "TESSERA_LOG_LEVEL": "warning",
}

PROJECT_NAME = "Demo: street scenes"
PROJECT_MARK = "(made by tessera serve --demo)"
POOL_IMAGES = 40
VALIDATION_IMAGES = 10
SCENE_HEIGHT, SCENE_WIDTH = 192, 256
SCENE_SEED = 2026
# The demo's model: the pretrained encoder learns from the first labels on a CPU (its
# features are cached at ingest; rounds train only the decoder). ``--demo-model unet``
# shows the U-Net from scratch instead.
DEMO_MODEL = "efficientnet_lite0"
PROJECT_SETTINGS: dict[str, Any] = {
    "superpixel_size": 16,
    "strategy": "dynamic",
    "mc_samples": 8,
    "initial_images": 4,
    "images_per_round": 4,
}
LEAD_EMAIL = "lead@tessera.demo"
ANNOTATOR_EMAIL = "annotator@tessera.demo"

STATE_FILE = "demo.json"
WORKER_LOG = "demo-worker.log"
# How long a stopping worker gets for its warm shutdown (SIGTERM) before its whole process
# group is killed. An idle worker on the embedded broker takes a few seconds.
WORKER_STOP_GRACE_SECONDS = 8.0
# Lines the demo prints; tests wait for READY_LINE.
READY_LINE = "Demo ready to paint"


# ---------------------------------------------------------------------------------------------
# Settings and the demo's stored state


@dataclass
class DemoState:
    """What a later start must find again: the secret key (sessions survive a restart) and
    the demo accounts' passwords. Kept in ``<data_dir>/demo.json``, readable by its owner."""

    secret_key: str
    lead_password: str
    annotator_password: str

    @classmethod
    def load_or_create(cls, data_dir: Path) -> DemoState:
        path = data_dir / STATE_FILE
        if path.is_file():
            stored = json.loads(path.read_text())
            return cls(
                secret_key=str(stored["secret_key"]),
                lead_password=str(stored["lead_password"]),
                annotator_password=str(stored["annotator_password"]),
            )
        state = cls(
            secret_key=secrets.token_urlsafe(48),
            lead_password=secrets.token_urlsafe(9),
            annotator_password=secrets.token_urlsafe(9),
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp")
        # Owner-only from the start: the file holds passwords and the secret key.
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(state.__dict__, file, indent=1)
        staging.replace(path)
        return state


def prepare_demo_environment(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Sets the demo's defaults in ``environ`` where they are unset, and the stored secret
    key when ``TESSERA_SECRET_KEY`` is unset; returns the defaults it applied.

    The worker subprocess inherits ``environ``; this process's cached settings are cleared
    so that ``get_settings()`` reads them.
    """
    applied = {name: value for name, value in DEMO_WORKER_DEFAULTS.items() if name not in environ}
    environ.update(applied)
    get_settings.cache_clear()
    if "TESSERA_SECRET_KEY" not in environ:
        state = DemoState.load_or_create(get_settings().data_dir)
        environ["TESSERA_SECRET_KEY"] = state.secret_key
        get_settings.cache_clear()
    return applied


def ensure_demo_users(settings: Settings, state: DemoState) -> None:
    """The lead and the annotator exist, active, with the stored passwords."""
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            for email, password, name in (
                (LEAD_EMAIL, state.lead_password, "Demo lead"),
                (ANNOTATOR_EMAIL, state.annotator_password, "Demo annotator"),
            ):
                user = session.scalar(select(User).where(User.email == normalize_email(email)))
                if user is None:
                    create_user(session, email, password, name=name)
                elif not password_hasher().verify(password, user.password_hash):
                    # demo.json was replaced (or the data directory copied): its passwords win.
                    user.password_hash = hash_password(password)
                    user.is_active = True
            session.commit()
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# The worker subprocess


def tessera_command() -> list[str]:
    """How to run the ``tessera`` CLI with this interpreter."""
    script = Path(sys.executable).with_name("tessera")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from backend.cli import main; main()"]


def start_worker(log_path: Path) -> subprocess.Popen[bytes]:
    """``tessera worker`` (one prefork pool process) in its own session and process group:
    a Ctrl-C in the terminal reaches only ``serve``, which then stops the worker in order.

    Call from the main thread: the parent-death signal fires when the *thread* that forked
    the child ends.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*tessera_command(), "worker", "--concurrency", "1", "--loglevel", "info"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # SIGKILL when serve dies, even by SIGKILL, and its pool processes follow it.
            # (SIGQUIT, Celery's cold shutdown, is lost when it lands during the worker's start.)
            preexec_fn=die_with(os.getpid()),
        )


def stop_worker(process: subprocess.Popen[bytes], grace: float = WORKER_STOP_GRACE_SECONDS) -> None:
    """Warm shutdown (SIGTERM), then SIGKILL to the whole process group, so no pool process
    is left. A job still running then is abandoned and resumes from its last finished step
    at the next start, once its lease lapses (the worker's watchdog)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)  # again is harmless
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # The group outlives its leader while a pool process is alive.
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# ---------------------------------------------------------------------------------------------
# The demo project, made through the public API


def _png(array: NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def demo_scenes() -> dict[str, list[tuple[str, NDArray[np.uint8], NDArray[np.uint8]]]]:
    """split -> [(filename, (H, W, 3) uint8 image, (H, W) uint8 true classes)], the same on
    every call (a fixed seed), so a resumed upload finds its duplicates."""
    rng = np.random.default_rng(SCENE_SEED)
    scenes: dict[str, list[tuple[str, NDArray[np.uint8], NDArray[np.uint8]]]] = {}
    for split, count in (("pool", POOL_IMAGES), ("validation", VALIDATION_IMAGES)):
        scenes[split] = []
        for index in range(count):
            image, truth = generate_scene(SCENE_HEIGHT, SCENE_WIDTH, rng)
            scenes[split].append((f"{split}-{index:03d}.png", image, truth))
    return scenes


class DemoStopped(Exception):
    """The server is stopping; the seeding thread ends quietly."""


class DemoSeeder:
    """Brings the demo project to a labeling round, as the lead, over HTTP."""

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
                if project.get("model_architecture") != self.model:
                    self._call(
                        "PATCH",
                        f"/projects/{project_id}",
                        (200,),
                        json={"model_architecture": self.model},
                    )
                    self.echo(f"demo: the project's model is now {self.model} (next round)")
                break
        else:
            body = {
                "name": PROJECT_NAME,
                "description": "Generated street-like scenes with exact ground truth "
                f"{PROJECT_MARK}.",
                "classes": [
                    {"name": c["name"], "colour": "#" + bytes(cast(list[int], c["color"])).hex()}
                    for c in CLASSES
                ],
                **PROJECT_SETTINGS,
                "model_architecture": self.model,
            }
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
                files = [("files", (name, _png(image), "image/png")) for name, image in missing]
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
                files={"file": ("truth.png", _png(truths[image["filename"]]), "image/png")},
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


# ---------------------------------------------------------------------------------------------
# The command


def _echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


def _browser_host(host: str) -> str:
    """A host a browser on this machine can open for a bind address."""
    if host in ("0.0.0.0", "", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def _stop_signals(on_signal: Callable[[int], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``on_signal`` (uvicorn puts its own handlers in place while it
    serves, and re-raises the signal it stopped for when it returns)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        on_signal(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _DemoServer(uvicorn.Server):
    """uvicorn's server that also calls ``on_exit`` as soon as a stop signal arrives, so the
    worker's shutdown runs alongside the server's and the seeding thread ends quietly."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_exit()
        super().handle_exit(sig, frame)


def run_demo(
    settings: Settings,
    host: str,
    port: int,
    applied: Mapping[str, str],
    model: str = DEMO_MODEL,
) -> None:
    """Serves the API with a worker subprocess and seeds the demo project; returns after a
    Ctrl-C or SIGTERM with the worker stopped."""
    began = time.monotonic()
    state = DemoState.load_or_create(settings.data_dir)
    ensure_demo_users(settings, state)
    url = f"http://{_browser_host(host)}:{port}"
    data_dir = settings.data_dir.resolve()
    worker_log = data_dir / WORKER_LOG
    _echo("Tessera demo")
    _echo(f"  open       {url}")
    _echo(f"  annotator  {ANNOTATOR_EMAIL}  password {state.annotator_password}  (paints)")
    _echo(f"  lead       {LEAD_EMAIL}  password {state.lead_password}  (starts rounds)")
    _echo(f"  data       {data_dir}  (delete it to start over)")
    _echo(f"  worker log {worker_log}")
    _echo(f"  model      {model} (--demo-model to change)")
    if applied:
        small = ", ".join(f"{k.removeprefix('TESSERA_')}={v}" for k, v in applied.items())
        _echo(f"  demo defaults (set TESSERA_* to change): {small}")
    _echo("Press Ctrl-C to stop.")

    stop = threading.Event()
    phase = "setup"  # -> "serving" -> "stopping"
    worker: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int) -> None:
        stop.set()
        if phase == "setup":
            raise KeyboardInterrupt
        if phase == "stopping" and worker is not None:
            # A second Ctrl-C while the worker shuts down: no more waiting.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(worker.pid, signal.SIGKILL)
        # While serving, uvicorn's own handlers are in place; it re-raises the signal it
        # stopped for after it returns, which lands here and only sets ``stop``.

    with _stop_signals(on_signal):
        try:
            worker = start_worker(worker_log)
            threading.Thread(
                target=_report_worker_exit,
                args=(worker, stop, worker_log),
                name="demo-worker-watch",
                daemon=True,
            ).start()
            seeder = threading.Thread(
                target=_seed_in_background,
                args=(f"{url}/api/v1", state, stop, url, worker, began, model),
                name="demo-seeder",
                daemon=True,
            )
            seeder.start()
            phase = "serving"
            config = uvicorn.Config(
                create_app(settings),
                host=host,
                port=port,
                log_level=settings.log_level,
                timeout_graceful_shutdown=5,
            )
            _DemoServer(config, lambda: _begin_stopping(stop, worker)).run()
        except KeyboardInterrupt:
            pass
        finally:
            phase = "stopping"
            stop.set()
            if worker is not None:
                _echo("Stopping the worker...")
                stop_worker(worker)
    _echo("Tessera demo stopped.")


def _begin_stopping(stop: threading.Event, worker: subprocess.Popen[bytes] | None) -> None:
    stop.set()
    if worker is not None and worker.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown


def _report_worker_exit(
    worker: subprocess.Popen[bytes], stop: threading.Event, log_path: Path
) -> None:
    """Says so when the worker ends while the demo still serves (rounds would not run)."""
    code = worker.wait()
    if not stop.is_set():
        _echo(f"demo: the worker exited with {code} (see {log_path}); restart the demo")


def _seed_in_background(
    api_url: str,
    state: DemoState,
    stop: threading.Event,
    url: str,
    worker: subprocess.Popen[bytes],
    began: float,
    model: str = DEMO_MODEL,
) -> None:
    seeder = DemoSeeder(api_url, state.lead_password, stop, _echo, model)
    try:
        project_id, labeling = seeder.run()
        if labeling:
            _echo(
                f"{READY_LINE} ({time.monotonic() - began:.0f} s): open {url}, log in as "
                f"{ANNOTATOR_EMAIL} (password {state.annotator_password}); "
                f"project {project_id}"
            )
        else:
            _echo(f"Demo running: open {url}, log in as {LEAD_EMAIL} to start a round")
    except DemoStopped:
        pass
    except Exception as error:  # the demo's server stays up; say what went wrong
        if not stop.is_set():
            exited = worker.poll()
            hint = f" (the worker exited with {exited})" if exited is not None else ""
            _echo(f"demo: setting up the demo project failed{hint}: {error}")
    finally:
        seeder.close()
