"""The demo's settings (worker defaults, model) and its stored state (secret key and
passwords).

Everything runs on one machine with nothing else installed: the SQLite database and the
embedded file broker under ``TESSERA_DATA_DIR``, unless the user points ``TESSERA_*`` at
others.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from core.settings import get_settings

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
    # One torch (OpenMP) thread: the demo's decoder-sized steps gain nothing from more, and
    # with the API, the browser or other jobs on the same cores, OpenMP's spinning threads
    # made a demo round take 4x the CPU and wall time of one thread (bench/demo_round.py
    # --threads-baseline; README "The demo round on CPU").
    "OMP_NUM_THREADS": "1",
}

# The demo's model: the pretrained encoder learns from the first labels on a CPU (its
# features are cached at ingest; rounds train only the decoder). ``--demo-model unet``
# shows the U-Net from scratch instead.
DEMO_MODEL = "efficientnet_lite0"
DEMO_MODELS = ("efficientnet_lite0", "unet")

STATE_FILE = "demo.json"


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
