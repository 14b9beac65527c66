"""The planet: a transmission spectrum (Rp/R* per column) and its limb-darkened transit.

``Rp/R*(lambda) = sqrt(transit_depth) + sum extra exp(-0.5 ((lambda -
centre) / sigma)**2)`` over ``planet_lines``, at each column's wavelength
(the config's ``wavelength_solution``); each column's light curve is a
batman model (Kreidberg 2015) of that Rp/R* with the planet's period, a/R*,
inclination and limb darkening, integrated over the exposure.
"""

from __future__ import annotations

import math

import numpy as np

from .parameters import SimulationParameters

__all__ = ["rp_rs", "light_curves", "total_duration"]

#: Samples per exposure of the batman model's time integration.
_SUPERSAMPLE = 7


def rp_rs(p: SimulationParameters, wave) -> np.ndarray:
    """Rp/R* at wavelengths ``wave`` (A): the baseline plus the lines of ``planet_lines``."""
    wave = np.asarray(wave, float)
    out = np.full(wave.shape, math.sqrt(p.transit_depth))
    for centre, extra, sigma in p.planet_lines:          # a handful of lines
        out += extra * np.exp(-0.5 * ((wave - centre) / sigma) ** 2)
    return out


def light_curves(p: SimulationParameters, radius, times) -> np.ndarray:
    """Relative flux of every column in every frame during the transit.

    Parameters
    ----------
    p : SimulationParameters
        ``planet_period`` (days), ``planet_a_rs``, ``planet_inclination``,
        ``limb_darkening``, ``exptime`` (s).
    radius : ndarray, shape (n_columns,)
        Rp/R* per column (:func:`rp_rs`).
    times : ndarray, shape (n_frames,)
        Mid-exposure times from mid-transit, days.

    Returns
    -------
    ndarray, shape (n_frames, n_columns)
        Flux over the out-of-transit flux, averaged over each exposure.
    """
    import batman

    params = batman.TransitParams()
    params.t0, params.per, params.rp = 0.0, p.planet_period, float(radius.flat[0])
    params.a, params.inc, params.ecc, params.w = p.planet_a_rs, p.planet_inclination, 0.0, 90.0
    params.u = list(p.limb_darkening)
    params.limb_dark = {0: "uniform", 1: "linear", 2: "quadratic", 4: "nonlinear"}[
        len(p.limb_darkening)]
    model = batman.TransitModel(params, np.asarray(times, float),
                                supersample_factor=_SUPERSAMPLE, exp_time=p.exptime / 86400.0)
    # Columns share few distinct radii (the baseline away from the lines): one model each.
    values, index = np.unique(radius, return_inverse=True)
    curves = np.empty((len(values), len(times)))
    for k, value in enumerate(values):
        params.rp = float(value)
        curves[k] = model.light_curve(params)
    return curves[index.ravel()].T


def total_duration(p: SimulationParameters) -> float:
    """First to fourth contact of the baseline Rp/R*, days (circular orbit; 0 if it misses)."""
    k = math.sqrt(p.transit_depth)
    inc = math.radians(p.planet_inclination)
    b = p.planet_a_rs * math.cos(inc)
    chord = (1.0 + k) ** 2 - b ** 2
    if chord <= 0:
        return 0.0
    return p.planet_period / math.pi * math.asin(
        min(1.0, math.sqrt(chord) / (p.planet_a_rs * math.sin(inc))))
