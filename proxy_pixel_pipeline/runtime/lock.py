"""One run at a time per output folder.

A stage takes ``output_dir/.lock`` (created exclusively, holding the job's
host, pid, stage and start time) before it reads or writes anything there and
removes it when it ends, whether it succeeded or failed.  A second run while
the lock is held fails at once with a line that names the folder and the
running job.  A lock whose job is gone (same host, no such process: the job was
killed) is taken over with a warning.  A lock from another host cannot be
checked; its message says how to remove it if that job is dead.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import PipelineError
from .logs import get_logger

__all__ = ["output_lock", "lock_holder", "LOCK_NAME"]

LOCK_NAME = ".lock"


@contextmanager
def output_lock(output_dir, stage):
    """Hold the lock of ``output_dir`` for the duration of the block.

    Parameters
    ----------
    output_dir : str or Path
        The run's output folder (created if needed).
    stage : int
        The stage taking the lock (named in the other job's message).

    Raises
    ------
    PipelineError
        Another live job holds the lock.
    """
    path = Path(output_dir) / LOCK_NAME
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "stage": stage,
            "start": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for _ in range(2):      # a stale lock is removed once, then taken
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read(path)
            if not _is_stale(holder, path):
                raise PipelineError(
                    f"{path.parent}: in use by another run (stage {holder.get('stage', '?')}, "
                    f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, started "
                    f"{holder.get('start', '?')}); wait for it to finish, or delete {path} if "
                    f"that job is dead") from None
            get_logger().warning("%s: taking over the lock of a job that is gone (stage %s, "
                                 "host %s, pid %s, started %s)", path.parent, holder.get("stage"),
                                 holder.get("host"), holder.get("pid"), holder.get("start"))
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        break
    else:  # pragma: no cover - another job took it between our unlink and create
        raise PipelineError(f"{path.parent}: in use by another run that started just now")
    try:
        yield
    finally:
        if _read(path).get("pid") == mine["pid"]:
            path.unlink(missing_ok=True)
        if created:
            try:
                path.parent.rmdir()   # a run that wrote nothing leaves no empty folder
            except OSError:
                pass


def lock_holder(output_dir):
    """The job holding ``output_dir``'s lock (host, pid, stage, start), or None when there is
    no lock or its job is known to be gone."""
    path = Path(output_dir) / LOCK_NAME
    if not path.exists():
        return None
    holder = _read(path)
    return None if _is_stale(holder, path) else holder


def _read(path) -> dict:
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}      # unreadable or half-written: judged by its age (_is_stale)
    return value if isinstance(value, dict) else {}


def _is_stale(holder, path) -> bool:
    """Whether the job that wrote the lock is gone (only knowable on this host)."""
    if not holder:     # unreadable: a job is writing it now, or died while doing so
        try:
            return time.time() - path.stat().st_mtime > 10
        except OSError:
            return True
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError, TypeError):
        return False
    return False
