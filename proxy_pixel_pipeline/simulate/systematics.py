"""Systematics a light-curve fit can model: orbit windows, pointing, throughput ramps and drift.

Everything here is a function of quantities an observer can measure (the
time, the orbit window and the time since it began, the trace's position and
width, the ``JITTER`` keyword), so that a fit with those regressors can take
it out; the fields are documented in
:class:`~.parameters.SimulationParameters`.

Per science frame *f* of a visit, with ``u_f`` its mid-exposure time from
the visit's middle scaled to [-1, 1] and ``dt_f`` the time since its orbit
window began::

    offset_f     = D u_f + pointing_offset_sigma N_f                 [rows]
    smear_f      = JITTER_f / plate_scale,  JITTER_f = jitter_median exp(jitter_sigma_ln N'_f)
    slit_f       = 1 - slit_loss (offset_f**2 + smear_f**2)
    ramp_f       = 1 - A R_f exp(-dt_f / ramp_tau),   R_f = ramp_first_orbit in orbit 1, else 1
                   (ramp_shape "phase_cubic": 1 - A R_f sum_k b_k (2 x_f - 1)**k, k = 1 .. 3,
                   x_f = dt_f / the window's length, the orbit's phase in the window)
    drift_f      = 1 + sum_k c_k u_f**k                              (k = 1 .. drift_order)
    throughput_f = ramp_f drift_f

with ``D`` uniform in +-pointing_drift, ``A = ramp_amplitude exp(ramp_spread
N)``, ``c_k`` normal with rms ``drift_amplitude`` and ``b_k`` standard normal
(a thermal cycle cubic in orbital phase, as CUTE's own data simulator has
the throughput; drawn last, and only for that shape), all drawn once per
visit, as are the visit's trace shift (uniform in +-visit_trace_shift rows)
and its mid-transit time (uniform within +-transit_offset_max s of the
visit's middle).  The frame's signal is the visit's trace moved by
``offset_f`` rows, each Gaussian widened to ``hypot(sigma, smear_f)`` (its
integral kept), times ``slit_f x throughput_f`` and the transit.
"""

from __future__ import annotations

import numpy as np

from .parameters import SimulationParameters

__all__ = ["science_times", "visit_systematics"]

#: Largest loss at the slit edge (the factor is clipped to at least 1 minus this).
_MAX_SLIT_LOSS = 0.9


def science_times(p: SimulationParameters) -> dict:
    """When each science exposure of a visit is taken, and in which orbit window.

    Parameters
    ----------
    p : SimulationParameters
        ``n_science``, ``exptime``, ``cadence``, ``orbit_period``,
        ``orbit_visible_fraction``.

    Returns
    -------
    dict
        ``time``: mid-exposure times, s from the start of the visit's first
        exposure; ``orbit``: 1-based orbit window of each frame;
        ``since_window``: mid-exposure time minus the start of its window, s
        (``orbit_visible_fraction`` 0: one window, the whole visit);
        ``window``: a window's length, s.
    """
    n = p.n_science
    window = (n - 1) * p.cadence + p.exptime
    if p.orbit_visible_fraction > 0:
        window = p.orbit_visible_fraction * p.orbit_period
        per_window = int((window - p.exptime) // p.cadence) + 1
        idx = np.arange(n)
        orbit = idx // per_window
        start = orbit * p.orbit_period + (idx % per_window) * p.cadence
        window_start = orbit * p.orbit_period
    else:
        start = np.arange(n) * p.cadence
        orbit = np.zeros(n, int)
        window_start = np.zeros(n)
    time = start + 0.5 * p.exptime
    return {"time": time, "orbit": orbit + 1, "since_window": time - window_start,
            "window": float(window)}


def visit_systematics(p: SimulationParameters, times: dict, rng) -> dict:
    """One visit's draws and each science frame's pointing and throughput.

    The random draws come in a fixed order (trace shift, transit offset,
    pointing drift, per-frame offsets, per-frame jitters, ramp amplitude,
    drift coefficients, then the cubic ramp's coefficients when
    ``ramp_shape`` is ``"phase_cubic"``) and are made whatever the
    amplitudes, so switching one systematic on or off leaves the others'
    values unchanged.

    Parameters
    ----------
    p : SimulationParameters
    times : dict
        :func:`science_times`.
    rng : numpy.random.Generator
        The visit's systematics stream.

    Returns
    -------
    dict
        ``trace_shift`` (rows), ``transit_time`` (s from the visit's start,
        the visit's middle plus its offset), and per frame ``offset``,
        ``smear`` (rows), ``jitter`` (arcsec rms, rounded to 0.01 as written
        in the header), ``slit``, ``ramp``, ``drift`` and ``throughput``
        (``ramp x drift``) factors; ``ramp_amplitude``, ``drift_coefficients``
        and ``ramp_cubic`` (the ``b_k``, zeros for the exponential).
    """
    t = times["time"]
    n = len(t)
    first_start, last_end = t[0] - 0.5 * p.exptime, t[-1] + 0.5 * p.exptime
    middle, half = 0.5 * (first_start + last_end), 0.5 * (last_end - first_start)
    u = (t - middle) / half
    trace_shift = p.visit_trace_shift * rng.uniform(-1.0, 1.0)
    transit_time = middle + p.transit_offset_max * rng.uniform(-1.0, 1.0)
    drift_rows = p.pointing_drift * rng.uniform(-1.0, 1.0)
    offset = drift_rows * u + p.pointing_offset_sigma * rng.standard_normal(n)
    jitter = np.round(p.jitter_median * np.exp(p.jitter_sigma_ln * rng.standard_normal(n)), 2)
    smear = jitter / p.plate_scale
    slit = np.maximum(1.0 - p.slit_loss * (offset ** 2 + smear ** 2), 1.0 - _MAX_SLIT_LOSS)
    amplitude = p.ramp_amplitude * np.exp(p.ramp_spread * rng.standard_normal())
    depth = amplitude * np.where(times["orbit"] == 1, p.ramp_first_orbit, 1.0)
    coefficients = p.drift_amplitude * rng.standard_normal(p.drift_order)
    drift = 1.0 + sum(c * u ** (k + 1) for k, c in enumerate(coefficients))
    drift = np.broadcast_to(np.asarray(drift, float), (n,)).copy()
    cubic = np.zeros(3)
    if p.ramp_shape == "phase_cubic":
        cubic = rng.standard_normal(3)
        x = 2.0 * times["since_window"] / times["window"] - 1.0
        ramp = 1.0 - depth * sum(b * x ** (k + 1) for k, b in enumerate(cubic))
    else:
        ramp = 1.0 - depth * np.exp(-times["since_window"] / p.ramp_tau)
    return {"trace_shift": float(trace_shift), "transit_time": float(transit_time),
            "offset": offset, "smear": smear, "jitter": jitter, "slit": slit, "ramp": ramp,
            "drift": drift, "throughput": ramp * drift, "ramp_amplitude": float(amplitude),
            "drift_coefficients": coefficients, "ramp_cubic": cubic}
