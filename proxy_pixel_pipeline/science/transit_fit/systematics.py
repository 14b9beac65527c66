"""A declarative systematics basis per visit and its design matrix.

The light curve of a visit is modelled as ``F = T(t; rp, t0) * (X @ beta)``:
a transit times a systematics model that is linear in its coefficients
``beta``.  :class:`SystematicsSpec` says which columns ``X`` has; they come
from what can be measured per frame:

* ``constant`` (always; its coefficient is the out-of-transit flux);
* a ramp in the time since the orbit window's start (throughput settling in
  every orbit): polynomial (``ramp_t``, ``ramp_t^2`` ...) or exponential
  ``exp(-tau / timescale)`` (``ramp_exp``) with a fixed timescale -- linear in
  its amplitude.  Several timescales and degrees up to ``ramp_order`` are
  tried, and with ``auto`` both shapes: the fit chooses one per visit by BIC
  (:func:`ramp_choices`);
* the visit's first orbit (which settles more strongly): kept like the others,
  dropped (its frames masked), or given its own terms (an offset
  ``first_orbit`` and its own ramp ``first_orbit_ramp_*``, the shared ramp then
  zero there);
* a polynomial in time over the visit (``visit_t1`` ...: slow drifts);
* the trace's offset and width (pointing jitter moves and smears the trace;
  light lost at the slit edge): linear and quadratic terms;
* the CCD temperature; any named extra regressor (linear).

Every column but the constant is standardized (zero mean, unit standard
deviation over the frames used), so coefficients are flux changes per
standard deviation of the regressor and the normal equations stay well
conditioned; a polynomial's powers are taken of the standardized variable
(and standardized again).
A column that is constant over the frames used, or a linear combination of
earlier columns, is dropped (and named in :attr:`Design.dropped`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ...errors import PipelineError

__all__ = ["SystematicsSpec", "Design", "design_matrix", "ramp_choices", "OFFSET", "WIDTH",
           "TEMPERATURE", "CONSTANT_ONLY", "RAMPS"]

#: Names of the regressors a visit carries for the built-in terms.
OFFSET, WIDTH, TEMPERATURE = "trace_offset", "trace_width", "temperature"

_MIN_PER_DAY = 1440.0

#: The ramp shapes a spec may name.
RAMPS = ("auto", "exp", "poly", "none")


def _order(name, value, high):
    if int(value) != value or not 0 <= value <= high:
        raise PipelineError(f"systematics: '{name}' must be an integer in [0, {high}], "
                            f"got {value!r}")
    return int(value)


@dataclass(frozen=True)
class SystematicsSpec:
    """Which columns a visit's systematics design matrix has.

    Parameters
    ----------
    ramp : {"auto", "exp", "poly", "none"}
        Ramp in the time since the orbit window's start: ``auto`` tries the
        exponential at every timescale and the polynomial of every degree,
        each visit taking the one of lowest BIC (the ramp's shape differs
        from instrument to instrument: CUTE's own simulator has a cubic in
        orbital phase).
    ramp_order : int
        ``poly``, ``auto``: the highest degree (1-4); each visit takes the
        degree from 1 up to it of lowest BIC.  :func:`design_matrix` uses it
        as the degree.
    ramp_timescales : sequence of float
        ``exp``, ``auto``: timescales, minutes; with several, each visit takes
        the one of lowest BIC.
    first_orbit : {"keep", "drop", "own"}
        The visit's first orbit window: like the others, masked, or with its
        own offset and ramp.
    visit_order : int
        Degree of the polynomial in time over the visit (0 = none, up to 3).
    offset_order, width_order : int
        Terms in the trace's offset and width: 0 none, 1 linear, 2 linear and
        quadratic.
    temperature_order : int
        Terms in the CCD temperature (0-2).
    extra : sequence of str
        Names of further regressors (per-frame arrays a visit carries), linear.

    Raises
    ------
    PipelineError
        A value out of range, naming it.
    """

    ramp: str = "exp"
    ramp_order: int = 1
    ramp_timescales: tuple = (10.0,)
    first_orbit: str = "own"
    visit_order: int = 1
    offset_order: int = 1
    width_order: int = 1
    temperature_order: int = 0
    extra: tuple = ()

    def __post_init__(self):
        put = object.__setattr__
        if self.ramp not in RAMPS:
            raise PipelineError(f"systematics: 'ramp' must be one of {', '.join(RAMPS)}, got "
                                f"{self.ramp!r}")
        if self.first_orbit not in ("keep", "drop", "own"):
            raise PipelineError(f"systematics: 'first_orbit' must be keep, drop or own, got "
                                f"{self.first_orbit!r}")
        put(self, "ramp_order", _order("ramp_order", self.ramp_order, 4))
        if self.ramp in ("poly", "auto") and self.ramp_order < 1:
            raise PipelineError(f"systematics: 'ramp_order' must be >= 1 with ramp: {self.ramp}")
        put(self, "visit_order", _order("visit_order", self.visit_order, 3))
        put(self, "offset_order", _order("offset_order", self.offset_order, 2))
        put(self, "width_order", _order("width_order", self.width_order, 2))
        put(self, "temperature_order", _order("temperature_order", self.temperature_order, 2))
        try:
            scales = tuple(float(s) for s in np.atleast_1d(self.ramp_timescales))
        except (TypeError, ValueError):
            scales = ()
        if self.ramp in ("exp", "auto") and (not scales or not all(np.isfinite(scales))
                                             or min(scales) <= 0):
            raise PipelineError(f"systematics: 'ramp_timescales' must be positive minutes, got "
                                f"{self.ramp_timescales!r}")
        put(self, "ramp_timescales", scales)
        extra = (self.extra,) if isinstance(self.extra, str) else tuple(self.extra)
        if not all(isinstance(e, str) and e for e in extra):
            raise PipelineError(f"systematics: 'extra' must be regressor names, got {self.extra!r}")
        put(self, "extra", extra)

    def regressor_names(self):
        """Names of the per-frame regressors this basis reads."""
        names = [n for n, o in ((OFFSET, self.offset_order), (WIDTH, self.width_order),
                                (TEMPERATURE, self.temperature_order)) if o]
        return tuple(names) + tuple(e for e in self.extra if e not in names)


def ramp_choices(spec):
    """The single-shape specs a visit's fit chooses among: the exponential at each timescale
    (``ramp_timescales`` of one), the polynomial of each degree 1..``ramp_order``, both for
    ``auto``; the spec itself for ``none``."""
    exp = [replace(spec, ramp="exp", ramp_timescales=(t,)) for t in spec.ramp_timescales]
    poly = [replace(spec, ramp="poly", ramp_order=d) for d in range(1, spec.ramp_order + 1)]
    return {"exp": exp, "poly": poly, "auto": exp + poly}.get(spec.ramp, [spec])


#: Only the out-of-transit level (e.g. a channel after common-mode division).
CONSTANT_ONLY = SystematicsSpec(ramp="none", first_orbit="keep", visit_order=0, offset_order=0,
                                width_order=0)


@dataclass(frozen=True)
class Design:
    """A visit's systematics design matrix.

    Attributes
    ----------
    matrix : ndarray, shape (n_frames, n_coef)
        Standardized columns (``constant`` first) for every frame (NaN where a
        regressor is missing; only ``usable`` frames enter a fit).
    names : tuple of str
        Column names.
    usable : ndarray of bool, shape (n_frames,)
        Frames the fit may use: finite regressors, a valid orbit, not in a
        dropped first orbit, and the caller's mask.
    center, scale : ndarray, shape (n_coef,)
        Raw column = ``center + scale * matrix`` (constant: 0 and 1); the raw
        column of a linear term is the regressor itself (days for times), of
        a power ``^k`` the k-th power of the standardized regressor.
    dropped : tuple of str
        Columns left out (constant over the usable frames or degenerate).
    timescale : float or None
        Exponential ramp timescale used, minutes.
    visit_order : int
        Degree of the polynomial in time over the visit.
    ramp : str
        The ramp's shape: ``exp``, ``poly`` or ``none``.
    ramp_order : int
        ``poly``: its degree (0 otherwise).
    """

    matrix: np.ndarray
    names: tuple
    usable: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    dropped: tuple = ()
    timescale: float | None = None
    visit_order: int = 0
    ramp: str = "none"
    ramp_order: int = 0


def _powers(prefix, x, use, order):
    """``x`` itself, then powers 2.. of the standardized ``x``."""
    mu, sd = _standard(x, use)
    z = (x - mu) / (sd or 1.0)
    return [(prefix, x)] + [(f"{prefix}^{k}", z ** k) for k in range(2, order + 1)]


def _standard(x, use):
    v = x[use]
    mu = float(np.mean(v)) if v.size else 0.0
    sd = float(np.std(v)) if v.size else 0.0
    return mu, sd


def design_matrix(spec: SystematicsSpec, times, orbit, since_start, regressors=None, mask=None,
                  label="visit") -> Design:
    """Build the systematics design matrix of one visit.

    Parameters
    ----------
    spec : SystematicsSpec
    times : array_like, shape (n_frames,)
        Mid-exposure times, days.
    orbit : array_like of int, shape (n_frames,)
        Orbit window of each frame (-1: none), from :func:`.orbits.find_orbits`.
    since_start : array_like, shape (n_frames,)
        Time since the orbit window's start, days.
    regressors : mapping of str to array_like, optional
        Per-frame regressors by name (``trace_offset``, ``trace_width``,
        ``temperature`` and any ``extra`` the spec names).
    mask : array_like of bool, optional
        Frames to use (True).
    label : str
        Names the visit in error messages.

    Returns
    -------
    Design

    Raises
    ------
    PipelineError
        A regressor the spec needs is missing or has the wrong length, or no
        frame is usable.
    """
    t = np.asarray(times, float).ravel()
    n = t.size
    orb = np.asarray(orbit).ravel().astype(int)
    tau = np.asarray(since_start, float).ravel()
    regressors = {} if regressors is None else regressors
    if not isinstance(regressors, Mapping):
        raise PipelineError(f"{label}: regressors must be a mapping of name to per-frame values")
    use = np.ones(n, bool) if mask is None else np.asarray(mask, bool).ravel().copy()
    for name, arr in (("orbit", orb), ("since_start", tau), ("mask", use)):
        if arr.size != n:
            raise PipelineError(f"{label}: '{name}' has {arr.size} values for {n} frames")
    raw = {}
    for name in spec.regressor_names():
        if name not in regressors:
            raise PipelineError(f"{label}: regressor '{name}' is needed by the systematics model "
                                f"but missing (have: {sorted(regressors) or 'none'})")
        v = np.asarray(regressors[name], float).ravel()
        if v.size != n:
            raise PipelineError(f"{label}: regressor '{name}' has {v.size} values for {n} frames")
        raw[name] = v
        use &= np.isfinite(v)
    use &= np.isfinite(t) & (orb >= 0) & np.isfinite(tau)
    first = orb[use].min() if use.any() else 0
    in_first = orb == first
    if spec.first_orbit == "drop":
        use &= ~in_first
    if not use.any():
        raise PipelineError(f"{label}: no usable frame for the systematics model")

    if spec.ramp == "auto":
        raise PipelineError(f"{label}: 'ramp: auto' is a choice among shapes (ramp_choices), "
                            f"not a design")
    cols = []
    if spec.ramp == "exp":
        scale_min = spec.ramp_timescales[0]   # one, once chosen (ramp_choices)
        ramp = [("ramp_exp", np.exp(-tau * _MIN_PER_DAY / scale_min))]
    elif spec.ramp == "poly":
        ramp = _powers("ramp_t", tau, use, spec.ramp_order)
        scale_min = None
    else:
        ramp, scale_min = [], None
    if spec.first_orbit == "own" and (use & ~in_first).any():
        own = in_first.astype(float)
        cols += [(name, np.where(in_first, 0.0, x)) for name, x in ramp]
        cols.append(("first_orbit", own))
        cols += [(f"first_orbit_{name}", np.where(in_first, x, 0.0)) for name, x in ramp]
    else:
        cols += ramp
    if spec.visit_order:
        cols += _powers("visit_t", t, use, spec.visit_order)
    for name, order in ((OFFSET, spec.offset_order), (WIDTH, spec.width_order),
                        (TEMPERATURE, spec.temperature_order)):
        if order:
            cols += _powers(name, raw[name], use, order)
    builtin = {OFFSET: spec.offset_order, WIDTH: spec.width_order,
               TEMPERATURE: spec.temperature_order}
    cols += [(name, raw[name]) for name in spec.extra if not builtin.get(name)]

    names, columns, centers, scales, dropped = ["constant"], [np.ones(n)], [0.0], [1.0], []
    basis = np.ones((int(use.sum()), 1)) / np.sqrt(use.sum())    # orthonormal kept columns
    for name, x in cols:
        mu, sd = _standard(x, use)
        if not sd > 1e-12 * (abs(mu) + 1e-300) or not np.isfinite(sd):
            dropped.append(name)
            continue
        z = (x - mu) / sd
        v = z[use] - basis @ (basis.T @ z[use])
        if np.linalg.norm(v) < 1e-8 * np.sqrt(use.sum()):
            dropped.append(name)
            continue
        basis = np.column_stack([basis, v / np.linalg.norm(v)])
        names.append(name)
        columns.append(z)
        centers.append(mu)
        scales.append(sd)
    if len(names) > use.sum():
        raise PipelineError(f"{label}: {len(names)} systematics terms for {int(use.sum())} "
                            f"usable frames")
    return Design(np.column_stack(columns), tuple(names), use, np.array(centers),
                  np.array(scales), tuple(dropped), scale_min, spec.visit_order, spec.ramp,
                  spec.ramp_order if spec.ramp == "poly" else 0)
