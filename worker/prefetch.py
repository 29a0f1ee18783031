"""Loading the next batch while the current one is computed: a one-thread read-ahead.

The worker's batches are read from the database and decoded (PNG/JPEG, zlib) on the CPU;
both release the GIL for most of their time, so a background thread overlaps them with the
model's forward passes. Loads run in order, one at a time, at most ``depth`` ahead of the
consumer; results come back in order and a load's error is raised where its result is taken.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def prefetched(loads: Iterable[Callable[[], T]], depth: int = 1) -> Iterator[T]:
    """Yields ``load()`` for each load in order; with ``depth`` >= 1 the next ``depth``
    loads run in a background thread meanwhile, with 0 each runs when its turn comes.

    A consumer that stops early (``close()``, an exception) cancels the loads not started
    and waits for the one running, so no thread outlives the iteration.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    if depth == 0:
        for load in loads:
            yield load()
        return
    pending: deque[Future[T]] = deque()
    upcoming = iter(loads)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        try:
            for load in upcoming:
                pending.append(pool.submit(load))
                if len(pending) > depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
