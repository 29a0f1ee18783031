"""Where Celery messages travel: Redis in production, or the embedded broker by default.

The embedded broker is kombu's filesystem transport with two fixes, so that ``tessera serve``
and ``tessera worker`` on one machine need no other service:

- a message is written under a staging name and renamed into the queue folder, so a consumer
  never reads half a file (kombu's own ``_put`` opens the final name, then writes);
- a consumer claims a message by renaming it into its own folder on the same filesystem: one
  rename wins, so two workers never run the same message (kombu's own ``_get`` moves it to
  the system temp dir, which may be another filesystem, where a move is a copy).

Why files rather than kombu's SQLAlchemy transport on the SQLite database: the broker's
polling would compete with annotators' saves for SQLite's single writer lock, its tables
would live outside Alembic, and SQLite cannot ``SELECT ... FOR UPDATE``, so two workers could
fetch the same message. Files need none of that. Limits: one machine (or a shared POSIX
filesystem), no remote control (``celery inspect``); use Redis to run workers on many machines.

Like every kombu "virtual" transport it keeps a started, unacknowledged message in the
worker's memory, so a worker killed with SIGKILL loses it; the worker's watchdog
(``worker/watchdog.py``) re-sends jobs whose lease ran out, on either broker.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, Final

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

from core.settings import Settings
from core.storage import write_file_atomically

EMBEDDED_SCHEME: Final = "tessera-files"


class EmbeddedChannel(filesystem.Channel):
    # The same signature as kombu's filesystem Channel (which itself differs from its base).
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        folder = Path(self.data_folder_out)
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        # Staged under a name consumers skip, then renamed; a full disk leaves no part of it.
        write_file_atomically(folder / name, str_to_bytes(dumps(payload)))  # type: ignore[no-untyped-call]

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        folder = Path(self.data_folder_in)
        claimed_dir = folder.parent / "claimed"
        suffix = f".{queue}.msg"
        for name in sorted(os.listdir(folder)):
            if not name.endswith(suffix) or name.partition(".")[2] != suffix[1:]:
                continue
            claimed = claimed_dir / f"{uuid.uuid4().hex}-{name}"
            try:
                os.rename(folder / name, claimed)
            except FileNotFoundError:
                continue  # another consumer won this message
            payload = claimed.read_bytes()
            claimed.unlink()
            return loads(bytes_to_str(payload))  # type: ignore[no-untyped-call]
        raise Empty()


class EmbeddedTransport(filesystem.Transport):
    Channel = EmbeddedChannel
    # Message files are listed at this interval when the queue is empty.
    polling_interval = 0.2


@dataclass(frozen=True)
class BrokerConnection:
    """What a Celery app needs to reach the configured broker."""

    url: str
    transport_options: dict[str, Any] = field(default_factory=dict)
    embedded: bool = False


def broker_connection(settings: Settings) -> BrokerConnection:
    """The broker of ``settings``: ``TESSERA_BROKER_URL``, else the embedded one (whose
    folders this creates and whose transport this registers with kombu by name)."""
    if settings.broker_url:
        return BrokerConnection(settings.broker_url)
    root = settings.broker_dir
    messages = root / "messages"
    for folder in (messages, root / "staging", root / "claimed", root / "control"):
        folder.mkdir(parents=True, exist_ok=True)
    TRANSPORT_ALIASES.setdefault(EMBEDDED_SCHEME, f"{__name__}:EmbeddedTransport")
    return BrokerConnection(
        f"{EMBEDDED_SCHEME}://",
        {
            "data_folder_in": str(messages),
            "data_folder_out": str(messages),
            "control_folder": str(root / "control"),
        },
        embedded=True,
    )
