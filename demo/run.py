"""The demo's run loop: the API server, the worker subprocess and the seeding thread, until
Ctrl-C or SIGTERM; then the worker is stopped in order.

On first start the demo makes the two accounts and the project, and starts the first round;
once the worker has queried it (seconds), the annotator can paint. A later start finds all
of it and creates nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType

import click
import uvicorn

from backend.app import create_app
from core.settings import Settings
from demo.accounts import ANNOTATOR_EMAIL, LEAD_EMAIL, ensure_demo_users
from demo.environment import DEMO_MODEL, DemoState
from demo.seeder import DemoSeeder, DemoStopped
from demo.worker_process import WORKER_LOG, start_worker, stop_worker

# Lines the demo prints; tests wait for READY_LINE.
READY_LINE = "Demo ready to paint"


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


def _print_banner(
    url: str,
    state: DemoState,
    data_dir: Path,
    worker_log: Path,
    model: str,
    applied: Mapping[str, str],
) -> None:
    _echo("Tessera demo")
    _echo(f"  open       {url}")
    _echo(f"  annotator  {ANNOTATOR_EMAIL}  password {state.annotator_password}  (paints)")
    _echo(f"  lead       {LEAD_EMAIL}  password {state.lead_password}  (starts rounds)")
    _echo(f"  data       {data_dir}  (delete it to start over)")
    _echo(f"  worker log {worker_log}")
    _echo(f"  model      {model} (--demo-model to change)")
    if applied:
        small = ", ".join(f"{k.removeprefix('TESSERA_')}={v}" for k, v in applied.items())
        _echo(f"  demo defaults (set the variable to change): {small}")
    _echo("Press Ctrl-C to stop.")


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
    _print_banner(url, state, data_dir, worker_log, model, applied)

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
