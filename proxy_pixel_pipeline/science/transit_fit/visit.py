"""One visit's light curve and what a systematics model needs per frame."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ...errors import PipelineError
from .orbits import DEFAULT_GAP_MINUTES, find_orbits

__all__ = ["Visit"]


@dataclass(frozen=True)
class Visit:
    """A visit's light curve (white or one channel) with its per-frame regressors.

    Parameters
    ----------
    times : array_like, shape (n_frames,)
        Mid-exposure times, days (MJD).
    flux, flux_err : array_like, shape (n_frames,)
        Flux and its 1-sigma error (any unit, the same for both); frames with
        a non-finite flux or a non-positive error are not used.
    t0 : float
        Mid-transit time, days: the starting guess (and the centre of the
        prior window) when free, the value used when fixed.
    regressors : mapping of str to array_like, optional
        Per-frame regressors by name (``trace_offset``, ``trace_width``,
        ``temperature``, header keywords ...).
    orbit, since_start : array_like, optional
        Orbit window of each frame and the time since its start (days); found
        from the time gaps (``gap`` minutes) when not given.
    mask : array_like of bool, optional
        Frames to use (True); all by default.
    name : str
        Names the visit in results and messages.
    gap : float
        Minutes between frames that start a new orbit window (when ``orbit``
        is not given).

    Raises
    ------
    PipelineError
        An array's length differs from the times', naming it and the visit.
    """

    times: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    t0: float
    regressors: dict = field(default_factory=dict)
    orbit: np.ndarray | None = None
    since_start: np.ndarray | None = None
    mask: np.ndarray | None = None
    name: str = "visit"
    gap: float = DEFAULT_GAP_MINUTES

    def __post_init__(self):
        put = object.__setattr__
        t = np.asarray(self.times, float).ravel()
        n = t.size
        put(self, "times", t)
        for key in ("flux", "flux_err"):
            v = np.asarray(getattr(self, key), float).ravel()
            if v.size != n:
                raise PipelineError(f"{self.name}: '{key}' has {v.size} values for {n} frames")
            put(self, key, v)
        try:
            t0 = float(self.t0)
        except (TypeError, ValueError):
            t0 = np.nan
        if not np.isfinite(t0):
            raise PipelineError(f"{self.name}: 't0' must be a finite time in days, got {self.t0!r}")
        put(self, "t0", t0)
        regs = {}
        for key, v in dict(self.regressors or {}).items():
            v = np.asarray(v, float).ravel()
            if v.size != n:
                raise PipelineError(f"{self.name}: regressor '{key}' has {v.size} values for "
                                    f"{n} frames")
            regs[str(key)] = v
        put(self, "regressors", regs)
        if self.orbit is None or self.since_start is None:
            found = find_orbits(t, self.gap)
            orbit = found.number if self.orbit is None else self.orbit
            since = found.since_start if self.since_start is None else self.since_start
        else:
            orbit, since = self.orbit, self.since_start
        orbit, since = np.asarray(orbit).ravel().astype(int), np.asarray(since, float).ravel()
        for key, v in (("orbit", orbit), ("since_start", since)):
            if v.size != n:
                raise PipelineError(f"{self.name}: '{key}' has {v.size} values for {n} frames")
        put(self, "orbit", orbit)
        put(self, "since_start", since)
        mask = np.ones(n, bool) if self.mask is None else np.asarray(self.mask, bool).ravel()
        if mask.size != n:
            raise PipelineError(f"{self.name}: 'mask' has {mask.size} values for {n} frames")
        put(self, "mask", mask)

    @property
    def usable(self) -> np.ndarray:
        """The mask and a finite time, flux and positive error."""
        with np.errstate(invalid="ignore"):
            return (self.mask & np.isfinite(self.times) & np.isfinite(self.flux)
                    & np.isfinite(self.flux_err) & (self.flux_err > 0))

    @property
    def n_frames(self) -> int:
        return self.times.size

    def with_flux(self, flux, flux_err, **changes) -> "Visit":
        """A copy with another light curve (e.g. a channel's), same frames and regressors."""
        return replace(self, flux=flux, flux_err=flux_err, **changes)
