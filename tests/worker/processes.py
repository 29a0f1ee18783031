"""Processes as /proc shows them (Linux): children, liveness, and the pid in a lease holder."""

from __future__ import annotations

from pathlib import Path


def _stat(pid: int | str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def is_alive(pid: int) -> bool:
    """Running or sleeping; a zombie (dead, not yet reaped) counts as gone."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


# A process for checks made later: (pid, start time in clock ticks); pids wrap around, so
# a pid alone may name another program by then.
Proc = tuple[int, int]


def identify(pid: int) -> Proc | None:
    fields = _stat(pid)
    return (pid, int(fields[19])) if fields is not None else None


def still_running(proc: Proc) -> bool:
    fields = _stat(proc[0])
    return fields is not None and fields[0] != "Z" and int(fields[19]) == proc[1]


def living_children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if fields is not None and int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def holder_pid(worker: str | None) -> int | None:
    """The process in a job's lease holder id, ``host/pid/suffix``."""
    parts = (worker or "").split("/")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
