"""Orbit windows of a low-Earth-orbit visit, found from the gaps between frames.

CUTE observes its target in part of each ~95-minute orbit; the frames of one
window are separated by about one exposure (~300 s plus readout), the windows
by tens of minutes.  A gap longer than ``gap`` minutes between consecutive
frames (in time order) starts a new window.  Throughput settles within each
window (the orbit's thermal cycle), so systematics models use the time since
the window's first frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import PipelineError

__all__ = ["Orbits", "find_orbits", "DEFAULT_GAP_MINUTES"]

#: Default gap (minutes) that separates two orbit windows: longer than CUTE's
#: frame spacing (~5 min), far shorter than the ~50-minute gap between windows.
DEFAULT_GAP_MINUTES = 20.0

_MINUTES_PER_DAY = 1440.0


@dataclass(frozen=True)
class Orbits:
    """Orbit windows of one visit.

    Attributes
    ----------
    number : ndarray of int, shape (n_frames,)
        Window of each frame, 0 for the earliest, in the frames' own order
        (which need not be sorted); -1 for a frame without a finite time.
    since_start : ndarray of float, shape (n_frames,)
        Time since the window's first frame, days (NaN without a time).
    start, end : ndarray of float, shape (n_windows,)
        Time of each window's first and last frame, days.
    """

    number: np.ndarray
    since_start: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @property
    def count(self) -> int:
        """Number of windows."""
        return len(self.start)


def find_orbits(times, gap=DEFAULT_GAP_MINUTES) -> Orbits:
    """Split a visit's frames into orbit windows at time gaps.

    Parameters
    ----------
    times : array_like of float, shape (n_frames,)
        Mid-exposure times in days (MJD or any day-based scale); any order;
        NaN for a frame without a time.
    gap : float
        Minutes: consecutive frames (in time order) further apart than this
        belong to different windows.

    Returns
    -------
    Orbits

    Raises
    ------
    PipelineError
        ``gap`` is not a positive number of minutes.
    """
    gap = float(gap)
    if not np.isfinite(gap) or gap <= 0:
        raise PipelineError(f"orbit gap must be a positive number of minutes, got {gap}")
    t = np.asarray(times, dtype=float).ravel()
    number = np.full(t.shape, -1, dtype=int)
    since = np.full(t.shape, np.nan)
    good = np.flatnonzero(np.isfinite(t))
    if good.size == 0:
        return Orbits(number, since, np.empty(0), np.empty(0))
    order = good[np.argsort(t[good], kind="stable")]
    ts = t[order]
    new = np.concatenate([[True], np.diff(ts) * _MINUTES_PER_DAY > gap])
    window = np.cumsum(new) - 1
    starts = ts[new]
    ends = ts[np.concatenate([np.flatnonzero(new)[1:] - 1, [ts.size - 1]])]
    number[order] = window
    since[order] = ts - starts[window]
    return Orbits(number, since, starts, ends)
