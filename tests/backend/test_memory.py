"""The API process gives mask-sized buffers back to the system once a burst is over."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from backend.memory import Bursts

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
        deferred = memory._deferred_trim.timer
        assert deferred is not None
        deferred.join(timeout=30)  # the timer thread ends after its trim
        print(memory._last_trim > first)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True"


def test_a_burst_releases_once_its_work_has_paused_and_never_during_work() -> None:
    quiet_s = 0.3
    released: list[float] = []
    done = threading.Event()

    def release() -> None:
        released.append(time.monotonic())
        done.set()

    bursts = Bursts(quiet_s, release)
    with bursts.working():
        with bursts.working():
            pass
        assert not bursts.release_pending  # one piece still in flight
    assert bursts.release_pending
    with bursts.working():  # a new piece before the pause is over: held for 2 pauses
        began = time.monotonic()
        done.clear()  # (a very slow machine may have released before this piece began)
        time.sleep(2 * quiet_s)
        during = [t for t in released if t >= began]
        ended = time.monotonic()  # the piece ends after this
    assert during == []
    assert done.wait(timeout=30)
    time.sleep(quiet_s)  # a second release would come by now
    assert released[-1] - ended >= quiet_s
    assert len([t for t in released if t >= ended]) == 1
    assert not bursts.release_pending
