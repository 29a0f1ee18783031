"""How the API process gives memory back to the system after a burst of saves.

glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MB), so
after the first few saves a mask-sized buffer (2 MB at 2048x1024) comes from a per-thread
arena instead, and the threads of a busy server each keep megabytes of freed arena memory:
measured, 50 annotators saving 2048x1024 masks at once left one process at ~800 MB that it
never returned. A fixed threshold keeps every large buffer in its own mapping, unmapped when
freed; small objects still come from the arenas, whose count is capped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, Final

# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD: Final = -1
_M_MMAP_THRESHOLD: Final = -3
_M_ARENA_MAX: Final = -8

MMAP_THRESHOLD_BYTES: Final = 256 * 1024
TRIM_THRESHOLD_BYTES: Final = 1024 * 1024
ARENA_MAX: Final = 4


@cache
def _glibc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


def bound_heap_retention() -> bool:
    """Sets glibc malloc to return large freed blocks at once; False where there is no glibc
    (macOS, musl): nothing changes there."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    return all(
        mallopt(parameter, value) == 1
        for parameter, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
            (_M_ARENA_MAX, ARENA_MAX),
        )
    )


class PendingCall:
    """``action`` run once, ``delay`` seconds after ``schedule`` asks for it, in a daemon
    timer thread; asked again while it waits, nothing more is scheduled."""

    def __init__(self, action: Callable[[], object]) -> None:
        self._action = action
        self._lock = threading.Lock()
        self.timer: threading.Timer | None = None

    def schedule(self, delay: float) -> None:
        with self._lock:
            if self.timer is None:
                self.timer = threading.Timer(delay, self._run)
                self.timer.daemon = True
                self.timer.start()

    def _run(self) -> None:
        with self._lock:
            self.timer = None
        self._action()


_trim_lock = threading.Lock()
_last_trim = 0.0


def trim_heap(min_interval_s: float = 1.0) -> bool:
    """Hands the free memory at the top of each malloc arena back to the system, at most once
    per ``min_interval_s`` (it walks every arena: about a millisecond). True if it ran now;
    asked again too soon, it runs once when the interval is over, so the last save of a burst
    is never left untrimmed."""
    global _last_trim
    libc = _glibc()
    if libc is None:
        return False
    now = time.monotonic()
    with _trim_lock:
        wait = _last_trim + min_interval_s - now
        if wait > 0:
            _deferred_trim.schedule(wait)
            return False
        _last_trim = now
    libc.malloc_trim(0)
    return True


_deferred_trim = PendingCall(lambda: trim_heap(0.0))


class Bursts:
    """Work that comes in bursts (saves), and what it holds on to between them.

    Each piece of work runs inside ``working()``. When the last one in flight ends, the heap
    is trimmed (``trim_heap``); once no work has run for ``quiet_s`` seconds, ``release``
    runs (it drops what only a burst needs: scratch buffers, most of a cache) and the heap is
    trimmed again. Work that starts meanwhile only postpones it."""

    def __init__(self, quiet_s: float, release: Callable[[], None]) -> None:
        self.quiet_s = quiet_s
        self._release = release
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last_end = 0.0
        self._quiet_check = PendingCall(self._release_if_quiet)

    @contextmanager
    def working(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last_end = time.monotonic()
                last = self._in_flight == 0
            if last:
                trim_heap()
                self._quiet_check.schedule(self.quiet_s)

    @property
    def release_pending(self) -> bool:
        return self._quiet_check.timer is not None

    def _release_if_quiet(self) -> None:
        with self._lock:
            if self._in_flight:
                return  # the last piece of this burst schedules the check again
            wait = self._last_end + self.quiet_s - time.monotonic()
        if wait > 0:
            self._quiet_check.schedule(wait)
            return
        # Work that starts from here on is not harmed: it keeps what it already holds.
        self._release()
        trim_heap(0.0)


class ScratchBuffers:
    """Mask-sized bytearrays handed from one save to the next.

    Every buffer above the mmap threshold is a fresh mapping whose pages the kernel faults in
    and zeroes on first touch: ~2 ms of system time per 2 MB mask, more than inflating it. A
    save takes a buffer of its size here and gives it back; at most ``max_bytes`` wait here
    between saves, and ``clear`` (when saves have gone quiet: ``Bursts``) hands them all back
    to the system."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._free: list[bytearray] = []

    def take(self, size: int) -> bytearray:
        """A buffer of ``size`` bytes, contents undefined (the caller overwrites them)."""
        with self._lock:
            for index, buffer in enumerate(self._free):
                if len(buffer) == size:
                    return self._free.pop(index)
        return bytearray(size)

    def give(self, buffer: bytearray) -> None:
        """Keeps ``buffer`` for the next ``take`` (the caller holds no view of it any more),
        unless that would keep more than ``max_bytes``: the oldest go first."""
        with self._lock:
            self._free.append(buffer)
            while self._free and sum(len(b) for b in self._free) > self.max_bytes:
                self._free.pop(0)

    def clear(self) -> None:
        with self._lock:
            self._free.clear()

    @property
    def kept_bytes(self) -> int:
        with self._lock:
            return sum(len(b) for b in self._free)
