"""Child processes that die with their parent, even when the parent is killed by SIGKILL.

Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes the kernel kill the child when the
thread that forked it ends; a parent that died before the call is caught by comparing
``getppid()`` with the parent's pid afterwards. Elsewhere only that comparison is made.

Used for the demo's worker subprocess (``demo/worker_process.py``) and for the pool processes of
``tessera worker`` (``worker/commands/worker.py``): a killed worker must not leave a pool
process behind that holds its model (on a GPU, its memory). Celery's prefork pool makes the
same call in its own initializer (``celery.concurrency.prefork.process_initializer``, Linux
only, errors ignored); Tessera does not rely on it, and closes the fork-to-prctl gap, which
Celery leaves open.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with(parent_pid: int) -> Callable[[], None]:
    """A function for the child to call first thing: it gets SIGKILL when ``parent_pid``
    dies, and exits at once if that already happened."""
    # Loaded here, in the parent: the child only makes the call (as a ``preexec_fn`` it must
    # not import or allocate much).
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def arrange() -> None:
        if libc is not None and libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return arrange


def exit_with_parent(parent_pid: int) -> None:
    """``die_with(parent_pid)()`` as a module-level function, so a spawned process can take
    it as its initializer (closures do not pickle)."""
    die_with(parent_pid)()
