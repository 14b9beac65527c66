"""Each stage run's wall time, peak memory and warnings, per rank, beside its products.

:func:`recording` wraps one run of one stage (the command line does it for the
stage scripts and for ``run`` alike): every rank measures its wall-clock and CPU
time and its peak resident memory over the stage, and collects the warnings the
stage logged; when the stage succeeded rank 0 gathers them and writes
``output_dir/.runlog/stage<N>.json`` atomically (a failed run writes nothing, so the
file describes the run that made the products in place, whose ``RUNID`` it
records).  :func:`read_runlog` reads it back (the report shows it).

Peak memory is the process's resident high-water mark (``VmHWM``), reset when the
stage begins where Linux allows (``/proc/self/clear_refs``), so that several stages
run in one process (``run``) each get their own; elsewhere it is the process's
peak so far (``"peak_scope": "process"``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..errors import PipelineError
from ..io.atomic import write_text
from ..io.provenance import run_id
from . import registry
from .layout import Layout
from .logs import get_logger

__all__ = ["recording", "read_runlog", "runlog_path", "MAX_WARNINGS"]

#: Warnings kept per rank (all are counted).
MAX_WARNINGS = 200


def runlog_path(output_dir, stage) -> Path:
    """``output_dir/.runlog/stage<N>.json``."""
    return Layout(output_dir).runlog / f"stage{stage}.json"


def read_runlog(output_dir, stage):
    """The run log of ``stage``'s last successful run (dict), or None if there is none."""
    try:
        return json.loads(runlog_path(output_dir, stage).read_text())
    except (OSError, ValueError):
        return None


class _Warnings(logging.Handler):
    """Counts the WARNING and ERROR records of the pipeline's logger, keeps the first ones."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0
        self.records = []

    def emit(self, record):
        self.count += 1
        if len(self.records) < MAX_WARNINGS:
            self.records.append({"level": record.levelname, "message": record.getMessage(),
                                 "time": datetime.fromtimestamp(record.created).strftime("%H:%M:%S")})


def _reset_peak() -> str:
    """Reset this process's peak resident memory to the current one if the system allows;
    ``"stage"`` if it did, else ``"process"`` (the peak then covers the whole process)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return "stage"
    except OSError:
        return "process"


def _peak_gib():
    """Peak resident memory of this process (since the last reset), GiB; None where unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2 ** 20            # kB
    except OSError:
        pass
    try:
        import resource
    except ImportError:      # pragma: no cover - not POSIX
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 30 if sys.platform == "darwin" else peak / 2 ** 20    # bytes / KiB


def _products_runid(cfg, stage):
    """RUNID of the stage's products now in place (its first product file; None if none)."""
    out = registry.stage(stage).products[0]
    where = getattr(Layout(cfg.output_dir), out.name)
    try:
        return run_id(where(cfg.science_paths()[0]) if out.per_frame else where)
    except (PipelineError, IndexError):      # no science frames: no per-frame product
        return None


def _command() -> str:
    """This process's command line (``python -m package ...`` for a package's ``__main__``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = (f"python -m {spec.name.removesuffix('.__main__')}" if spec is not None
            else Path(sys.argv[0]).name)
    return " ".join([name, *sys.argv[1:]])


@contextmanager
def recording(cfg, stage, comm, command=None):
    """Measure one run of ``stage`` on every rank; on success rank 0 writes its run log.

    Parameters
    ----------
    cfg : Config
    stage : int
    comm : MPI communicator
        Every rank enters and leaves the block (leaving it gathers).
    command : str, optional
        The command line recorded (default: this process's).
    """
    log = get_logger()
    started = datetime.now(timezone.utc)
    wall, cpu = time.monotonic(), time.process_time()
    scope = _reset_peak()
    warnings = _Warnings()
    log.addHandler(warnings)
    try:
        yield
    finally:
        log.removeHandler(warnings)
    mine = {"rank": comm.rank, "host": socket.gethostname(), "pid": os.getpid(),
            "wall_s": round(time.monotonic() - wall, 3),
            "cpu_s": round(time.process_time() - cpu, 3),
            "peak_gib": _peak_gib(), "n_warnings": warnings.count, "warnings": warnings.records}
    ranks = comm.gather(mine)
    if comm.rank != 0:
        return
    spec = registry.stage(stage)
    entry = {"stage": stage, "script": spec.script, "title": spec.title, "version": __version__,
             "runid": _products_runid(cfg, stage), "config": str(cfg.source),
             "command": command or _command(),
             "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "finished": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "n_ranks": comm.size, "peak_scope": scope,
             "wall_s": max(r["wall_s"] for r in ranks),
             "n_warnings": sum(r["n_warnings"] for r in ranks), "ranks": ranks}
    write_text(runlog_path(cfg.output_dir, stage), json.dumps(entry, indent=1) + "\n")
