"""The API process gives mask-sized buffers back to the system once a burst is over."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BURST = textwrap.dedent(
    """
    import sys, threading
    from backend.memory import bound_heap_retention

    def rss_mb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    bounded = sys.argv[1] == "bounded" and bound_heap_retention()
    idle = rss_mb()
    barrier = threading.Barrier(16)

    def save_like():
        # What a save holds: an inflated 2048x1024 mask and a few smaller buffers, in a
        # thread of the server's pool, freed when the request ends.
        barrier.wait()
        for _ in range(20):
            buffers = [bytearray(2_099_200), bytearray(300_000), bytearray(40_000)]
            buffers[0][::4096] = b"x" * len(buffers[0][::4096])
            del buffers

    threads = [threading.Thread(target=save_like) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(bounded, rss_mb() - idle)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_freed_mask_buffers_leave_the_process_after_a_burst() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BURST, "bounded"], capture_output=True, text=True, check=True
    )
    bounded, grown_mb = result.stdout.split()
    assert bounded == "True"
    assert float(grown_mb) < 8, f"{grown_mb} MB stayed after the burst"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_a_trim_asked_for_too_soon_runs_when_the_interval_is_over() -> None:
    # The last save of a burst often ends within a second of the previous trim; its trim
    # must still happen, or the burst's freed memory stays until the next save.
    script = textwrap.dedent(
        """
        from backend import memory

        assert memory.trim_heap(0.0)
        first = memory._last_trim
        assert not memory.trim_heap(0.3)  # too soon: deferred
        assert memory._last_trim == first
        deferred = memory._pending_trim
        assert deferred is not None
        deferred.join(timeout=30)  # the timer thread ends after its trim
        print(memory._last_trim > first)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"
