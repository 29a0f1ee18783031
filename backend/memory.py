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


_trim_lock = threading.Lock()
_last_trim = 0.0
_pending_trim: threading.Timer | None = None


def trim_heap(min_interval_s: float = 1.0) -> bool:
    """Hands the free memory at the top of each malloc arena back to the system, at most once
    per ``min_interval_s`` (it walks every arena: about a millisecond). True if it ran now;
    asked again too soon, it runs once when the interval is over, so the last save of a burst
    is never left untrimmed."""
    global _last_trim, _pending_trim
    libc = _glibc()
    if libc is None:
        return False
    now = time.monotonic()
    with _trim_lock:
        wait = _last_trim + min_interval_s - now
        if wait > 0:
            if _pending_trim is None:
                _pending_trim = threading.Timer(wait, _deferred_trim)
                _pending_trim.daemon = True
                _pending_trim.start()
            return False
        _last_trim = now
    libc.malloc_trim(0)
    return True


def _deferred_trim() -> None:
    global _pending_trim
    with _trim_lock:
        _pending_trim = None
    trim_heap(0.0)


class ScratchBuffers:
    """Mask-sized bytearrays handed from one save to the next.

    Every buffer above the mmap threshold is a fresh mapping whose pages the kernel faults in
    and zeroes on first touch: ~2 ms of system time per 2 MB mask, more than inflating it. A
    save takes a buffer of its size here and gives it back; at most ``max_bytes`` wait here
    between saves, and ``clear`` (when saves have gone quiet) hands them all back to the
    system."""

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
