"""The transit: fixed orbital parameters and fast light curves at given times.

:class:`TransitModel` holds what a fit keeps fixed (or takes as the centre of a
prior): period, a/R*, inclination, limb darkening, and the model, batman's
(Kreidberg 2015) or a box.  :class:`TransitCurve` computes light curves at one
set of times for many trial ``Rp/R*`` and mid-transit times: batman's model is
built once (its sky-separation and integration step are kept) and only the
changed parameters are passed on each call.  :meth:`TransitCurve.table`
tabulates the light curve on a grid of depths at fixed ``t0`` and geometry and
interpolates it linearly, which turns one batman call per trial into a few
array operations, vectorized over many trials (the case of a spectroscopic
channel: only ``Rp/R*`` free).

A negative ``Rp/R*`` is an inverted transit (batman's convention: the flux
rises by the depth ``rp**2``), so that a fit can cross zero and a flat light
curve gives an unbiased ``Rp/R* ~ 0``.  Depth here is the signed
``rp * |rp|``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import PipelineError

__all__ = ["TransitModel", "TransitCurve", "DepthTable", "LAWS", "signed_depth", "signed_rp"]

#: Limb-darkening laws and their number of coefficients (batman's names).
LAWS = {"uniform": 0, "linear": 1, "quadratic": 2, "squareroot": 2, "logarithmic": 2,
        "exponential": 2, "power2": 2, "nonlinear": 4}
_DEFAULT_LAW = {0: "uniform", 1: "linear", 2: "quadratic", 4: "nonlinear"}


def signed_depth(rp):
    """Depth ``rp * |rp|`` of a (possibly inverted, ``rp < 0``) transit."""
    rp = np.asarray(rp, dtype=float)
    return rp * np.abs(rp)


def signed_rp(depth):
    """``Rp/R*`` of a signed depth: ``sign(d) sqrt(|d|)``."""
    depth = np.asarray(depth, dtype=float)
    return np.sign(depth) * np.sqrt(np.abs(depth))


def _number(name, value, low=None, high=None, low_open=True):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PipelineError(f"transit model: '{name}' must be a number, got {value!r}") from None
    bad = not np.isfinite(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v > high
    if bad:
        span = (f" in {'(' if low_open else '['}{low}, {high}]" if high is not None
                else f" {'>' if low_open else '>='} {low}" if low is not None else "")
        raise PipelineError(f"transit model: '{name}' must be a finite number{span}, got {value!r}")
    return v


@dataclass(frozen=True)
class TransitModel:
    """Orbital parameters and limb darkening of a transit, validated on creation.

    Parameters
    ----------
    period : float
        Orbital period, days.
    a_rs : float
        Semi-major axis over the stellar radius (> 1).
    inclination : float
        Orbital inclination, degrees, in (0, 90].
    limb_darkening : sequence of float
        Coefficients of ``law`` (0, 1, 2 or 4 of them).
    law : str, optional
        batman's limb-darkening law (:data:`LAWS`); by default from the number
        of coefficients: 0 uniform, 1 linear, 2 quadratic, 4 nonlinear.
    model : {"batman", "box"}
        ``box``: the flux drops by the depth within ``duration / 2`` of
        mid-transit (quick looks and box-shaped test transits).
    duration : float, optional
        Box model: full transit duration, days (required there).
    eccentricity : float
        Only 0 (circular orbits) is supported.
    omega : float
        Argument of periastron, degrees (unused when circular).
    supersample : int
        batman: sub-exposures averaged per frame (1 = none).
    exposure : float
        batman with ``supersample > 1``: exposure time, days.

    Raises
    ------
    PipelineError
        A parameter is out of range, naming it.
    """

    period: float
    a_rs: float
    inclination: float
    limb_darkening: tuple = ()
    law: str | None = None
    model: str = "batman"
    duration: float | None = None
    eccentricity: float = 0.0
    omega: float = 90.0
    supersample: int = 1
    exposure: float = 0.0

    def __post_init__(self):
        put = object.__setattr__
        if self.model not in ("batman", "box"):
            raise PipelineError(f"transit model: 'model' must be batman or box, got {self.model!r}")
        put(self, "period", _number("period", self.period, 0.0))
        put(self, "a_rs", _number("a_rs", self.a_rs, 1.0))
        put(self, "inclination", _number("inclination", self.inclination, 0.0, 90.0))
        put(self, "eccentricity", _number("eccentricity", self.eccentricity, 0.0, 0.0, False))
        put(self, "omega", _number("omega", self.omega))
        try:
            ld = tuple(float(u) for u in np.atleast_1d(np.asarray(self.limb_darkening, float)))
        except (TypeError, ValueError):
            raise PipelineError(f"transit model: 'limb_darkening' must be numbers, got "
                                f"{self.limb_darkening!r}") from None
        if not all(np.isfinite(ld)):
            raise PipelineError(f"transit model: 'limb_darkening' must be finite, got {ld}")
        law = self.law if self.law is not None else _DEFAULT_LAW.get(len(ld))
        if law is None:
            raise PipelineError(f"transit model: 'limb_darkening' must have 0, 1, 2 or 4 "
                                f"coefficients, got {len(ld)}")
        if law not in LAWS:
            raise PipelineError(f"transit model: 'law' must be one of {sorted(LAWS)}, got {law!r}")
        if LAWS[law] != len(ld):
            raise PipelineError(f"transit model: 'limb_darkening' of the {law} law needs "
                                f"{LAWS[law]} coefficients, got {len(ld)}")
        put(self, "limb_darkening", ld)
        put(self, "law", law)
        if self.model == "box":
            if self.duration is None:
                raise PipelineError("transit model: 'duration' (days) is needed by the box model")
            put(self, "duration", _number("duration", self.duration, 0.0, self.period))
        elif self.duration is not None:
            put(self, "duration", _number("duration", self.duration, 0.0, self.period))
        if int(self.supersample) != self.supersample or self.supersample < 1:
            raise PipelineError(f"transit model: 'supersample' must be a positive integer, got "
                                f"{self.supersample!r}")
        put(self, "supersample", int(self.supersample))
        put(self, "exposure", _number("exposure", self.exposure, 0.0, low_open=False))
        if self.supersample > 1 and self.exposure <= 0:
            raise PipelineError("transit model: 'exposure' (days) must be > 0 with supersample > 1")

    def light_curve(self, times, rp_rs, t0, a_rs=None, inclination=None):
        """Relative flux at ``times`` (days) for ``rp_rs`` and mid-transit ``t0`` (days).

        Builds a :class:`TransitCurve` each call; keep one for repeated calls.
        """
        return TransitCurve(self, times)(rp_rs, t0, a_rs, inclination)


class TransitCurve:
    """Light curves of one transit model at fixed times, for many trial parameters.

    Parameters
    ----------
    transit : TransitModel
    times : array_like of float, shape (n,)
        Mid-exposure times, days.
    """

    def __init__(self, transit: TransitModel, times):
        self.transit = transit
        self.times = np.ascontiguousarray(np.asarray(times, dtype=float).ravel())
        if not np.all(np.isfinite(self.times)):
            raise PipelineError("transit curve: 'times' must all be finite")
        self._model = None
        self._params = None
        if transit.model == "batman" and self.times.size:
            import batman

            p = batman.TransitParams()
            p.t0, p.per, p.rp = float(np.median(self.times)), transit.period, 0.1
            p.a, p.inc = transit.a_rs, transit.inclination
            p.ecc, p.w = transit.eccentricity, transit.omega
            p.u, p.limb_dark = list(transit.limb_darkening), transit.law
            kw = ({"supersample_factor": transit.supersample, "exp_time": transit.exposure}
                  if transit.supersample > 1 else {})
            self._model = batman.TransitModel(p, self.times, **kw)
            self._params = p

    def __call__(self, rp_rs, t0, a_rs=None, inclination=None):
        """Relative flux (1 out of transit) at the times.

        Parameters
        ----------
        rp_rs : float
            Planet-to-star radius ratio; negative inverts the transit.
        t0 : float
            Mid-transit time, days.
        a_rs, inclination : float, optional
            Override the model's a/R* and inclination (degrees).

        Returns
        -------
        ndarray, shape (n,)
        """
        rp = float(rp_rs)
        if self.times.size == 0:
            return np.ones(0)
        tr = self.transit
        if tr.model == "box":
            half = tr.period / 2.0
            phase = np.mod(self.times - float(t0) + half, tr.period) - half
            inside = np.abs(phase) <= tr.duration / 2.0
            return np.where(inside, 1.0 - rp * abs(rp), 1.0)
        if rp == 0.0:
            return np.ones(self.times.size)
        p = self._params
        p.rp, p.t0 = rp, float(t0)
        p.a = tr.a_rs if a_rs is None else float(a_rs)
        p.inc = tr.inclination if inclination is None else float(inclination)
        return np.asarray(self._model.light_curve(p), dtype=float)

    def table(self, depths, t0, a_rs=None, inclination=None) -> "DepthTable":
        """Tabulate the light curve on a grid of signed depths (fixed t0 and geometry).

        Parameters
        ----------
        depths : array_like of float, shape (m,)
            Increasing grid of signed depths ``rp * |rp|``.
        t0, a_rs, inclination : float
            As in :meth:`__call__`.

        Returns
        -------
        DepthTable
        """
        grid = np.asarray(depths, dtype=float)
        if grid.ndim != 1 or grid.size < 2 or np.any(np.diff(grid) <= 0):
            raise PipelineError("transit curve: a depth table needs >= 2 increasing depths")
        rows = np.stack([self(r, t0, a_rs, inclination) for r in signed_rp(grid)])
        return DepthTable(grid, rows, self, float(t0), a_rs, inclination)


@dataclass
class DepthTable:
    """Light curves tabulated in signed depth; linear interpolation between rows.

    The flux is nearly linear in the depth (exactly so for a box or a planet
    fully on the disc), so a grid step ``h`` in depth errs by ``<~ h / 4`` only
    on ingress/egress frames, where the contact points move with the depth.
    Depths outside the grid are computed exactly.

    Attributes
    ----------
    depths : ndarray, shape (m,)
    rows : ndarray, shape (m, n)
        Light curves at each grid depth.
    """

    depths: np.ndarray
    rows: np.ndarray
    curve: TransitCurve = field(repr=False)
    t0: float
    a_rs: float | None = None
    inclination: float | None = None

    def __call__(self, depths):
        """Light curves, shape ``(len(depths), n)``, for an array of signed depths."""
        d = np.atleast_1d(np.asarray(depths, dtype=float))
        g = self.depths
        i = np.clip(np.searchsorted(g, d) - 1, 0, g.size - 2)
        frac = (d - g[i]) / (g[i + 1] - g[i])
        out = self.rows[i] + frac[:, None] * (self.rows[i + 1] - self.rows[i])
        outside = np.flatnonzero((d < g[0]) | (d > g[-1]))
        for j in outside:
            out[j] = self.curve(signed_rp(d[j]), self.t0, self.a_rs, self.inclination)
        return out
