"""The demo's ``tessera worker`` subprocess: started beside the server, stopped with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from worker.parent_death import die_with

WORKER_LOG = "demo-worker.log"
# How long a stopping worker gets for its warm shutdown (SIGTERM) before its whole process
# group is killed. An idle worker on the embedded broker takes a few seconds.
WORKER_STOP_GRACE_SECONDS = 8.0


def tessera_command() -> list[str]:
    """How to run the ``tessera`` CLI with this interpreter."""
    script = Path(sys.executable).with_name("tessera")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "tessera"]


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
