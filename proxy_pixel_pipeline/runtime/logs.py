"""Rank-aware logging and a progress display for long stages.

Every message carries the MPI rank.  Rank 0 logs at INFO; other ranks only
warnings and errors unless ``--verbose``.  :class:`Progress` shows rank 0 the
fraction of work done across all ranks and an ETA: other ranks send their
counts with small non-blocking messages that rank 0 drains as it goes.
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np

__all__ = ["setup_logging", "get_logger", "Progress"]

_TAG_PROGRESS = 7301


def setup_logging(rank=0, size=1, verbose=False):
    """Configure the ``proxy_pixel_pipeline`` logger for this rank."""
    logger = logging.getLogger("proxy_pixel_pipeline")
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    tag = f"[{rank}/{size}] " if size > 1 else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s {tag}%(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    level = logging.DEBUG if verbose else (logging.INFO if rank == 0 else logging.WARNING)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def get_logger():
    """The pipeline's logger."""
    return logging.getLogger("proxy_pixel_pipeline")


class Progress:
    """Report the fraction of work done across ranks, with an ETA, from rank 0.

    Parameters
    ----------
    comm : MPI communicator
    total : int
        Work units across all ranks (e.g. spectral pixels).
    label : str
        What is being done, for the log line.
    interval : float
        Seconds between reports.

    Every rank calls :meth:`update` as it finishes units and :meth:`close`
    at the end (collective: rank 0 waits for every rank's final count).
    """

    def __init__(self, comm, total, label, interval=5.0):
        self.comm, self.total, self.label, self.interval = comm, int(total), label, interval
        self.start = self._last = time.monotonic()
        self._first = None       # (time, units) when the first work was done
        self.done_local = 0
        self.done = np.zeros(comm.size, np.int64)
        self._requests = []
        self._log = get_logger()

    def update(self, n):
        """Record ``n`` more units done on this rank."""
        self.done_local += int(n)
        if self.comm.rank == 0:
            self.done[0] = self.done_local
            self._drain(block=False)
            self._report()
        elif time.monotonic() - self._last >= self.interval / 5:
            self._last = time.monotonic()
            self._send(self.done_local)

    def close(self, expected_local):
        """Finish: rank 0 waits until every rank reported its last unit."""
        from mpi4py import MPI

        if self.comm.rank != 0:
            self._send(expected_local)
            MPI.Request.Waitall([request for request, _ in self._requests])
            return
        self.done[0] = expected_local
        self._drain(block=True)
        elapsed = time.monotonic() - self.start
        rate = self.total / elapsed if elapsed > 0 else float("inf")
        self._log.info("%s: %d done in %.1f s (%.0f per s)", self.label, self.total, elapsed, rate)

    def _send(self, count):
        buf = np.array([count], np.int64)    # kept alive with its request until sent
        self._requests.append((self.comm.Isend(buf, dest=0, tag=_TAG_PROGRESS), buf))

    # -- rank 0 only
    def _drain(self, block):
        from mpi4py import MPI

        status = MPI.Status()
        buf = np.zeros(1, np.int64)
        while True:
            if block:
                if self.done.sum() >= self.total and not self.comm.Iprobe(MPI.ANY_SOURCE, _TAG_PROGRESS):
                    return
            elif not self.comm.Iprobe(MPI.ANY_SOURCE, _TAG_PROGRESS):
                return
            self.comm.Recv(buf, source=MPI.ANY_SOURCE, tag=_TAG_PROGRESS, status=status)
            self.done[status.Get_source()] = max(self.done[status.Get_source()], buf[0])
            self._report()

    def _report(self):
        now = time.monotonic()
        done = int(self.done.sum())
        if self._first is None and done > 0:
            self._first = (now, done)
        if now - self._last < self.interval:
            return
        self._last = now
        frac = done / self.total if self.total else 1.0
        elapsed = now - self.start
        if self._first is not None and done > self._first[1]:
            # The rate since the first finished work: start-up (reading, compiling
            # kernels) must not inflate the estimate of what is left.
            t0, d0 = self._first
            eta = (self.total - done) * (now - t0) / (done - d0)
        else:
            eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        self._log.info("%s: %5.1f%% (%d/%d), elapsed %.0f s, ETA %.0f s",
                       self.label, 100 * frac, done, self.total, elapsed, eta)
