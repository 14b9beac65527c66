"""Light curves and transit depths from a series of extracted spectra.

White light curve (every usable column) and spectroscopic channels of
``channel_width`` columns, normalised by the out-of-transit median; the depth of
each from a linear least-squares fit ``F(t) = c (1 - depth * s(t))`` where the
transit shape ``s`` is a box (1 within ``transit_mid +- duration / 2``) or
batman's model (Kreidberg 2015) divided by its own depth, ``(1 - lc) /
rp**2``, so that ``depth = (Rp/R*)**2`` (refit once with the fitted depth; the
other transit parameters fixed).  Errors come from the residual scatter.
Nothing here imports MPI.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


__all__ = ["band_edges", "channel_edges", "wavelengths", "fill_columns", "mid_exposure", "usable_columns", "bin_channels",
           "normalise", "transit_shape", "fit_depth", "transit_depth", "Depth"]

_JD_MJD = 2400000.5


def channel_edges(n_columns, width) -> np.ndarray:
    """``(n_channels, 2)`` half-open column ranges of ``width`` columns (last one kept short)."""
    lo = np.arange(0, int(n_columns), int(width))
    return np.stack([lo, np.minimum(lo + int(width), int(n_columns))], axis=1)


def band_edges(wave, bands) -> np.ndarray:
    """``(n_channels, 2)`` half-open column ranges of wavelength bands.

    Parameters
    ----------
    wave : ndarray, shape (n_columns,)
        Each column's wavelength, A, increasing.
    bands : sequence of (float, float)
        ``[low, high]`` in A; a column belongs to a band when its wavelength
        lies within it (bands may overlap).

    Returns
    -------
    ndarray of int

    Raises
    ------
    ValueError
        A band lying (partly) outside the detector's wavelengths, or holding
        no column, naming it.
    """
    wave = np.asarray(wave, float)
    edges = []
    for lo, hi in bands:
        if lo < wave[0] or hi > wave[-1]:
            raise ValueError(f"band [{lo:g}, {hi:g}] A lies outside the detector's "
                             f"{wave[0]:.1f} to {wave[-1]:.1f} A")
        first, stop = np.searchsorted(wave, lo, "left"), np.searchsorted(wave, hi, "right")
        if stop <= first:
            raise ValueError(f"band [{lo:g}, {hi:g}] A holds no column")
        edges.append((first, stop))
    return np.asarray(edges, int).reshape(-1, 2)


def wavelengths(solution, columns):
    """Wavelength (A) of each column from polynomial coefficients, lowest order first.

    Parameters
    ----------
    solution : sequence of float or None
        ``[2479.0, 0.4]`` is 2479 A + 0.4 A per column.
    columns : array_like of float

    Returns
    -------
    ndarray or None
        None without a solution.
    """
    if solution is None:
        return None
    return np.polynomial.polynomial.polyval(np.asarray(columns, float), np.asarray(solution, float))


def mid_exposure(start, exptime):
    """Mid-exposure MJD from the start (MJD, or JD above 2400000.5) and the exposure time (s).

    Parameters
    ----------
    start, exptime : array_like of float
        NaN where a header lacks the keyword (a missing exposure time counts as 0).

    Returns
    -------
    ndarray
    """
    start = np.asarray(start, float)
    mjd = np.where(start > _JD_MJD, start - _JD_MJD, start)
    return mjd + np.nan_to_num(np.asarray(exptime, float)) / 2.0 / 86400.0


def fill_columns(flux, flux_err, bad):
    """Replace unreliable column fluxes by the series' median of the column, scaled to the frame.

    A column whose optimal flux rests on few pixels (flagged LOW_WEIGHT or
    NO_DATA) would add its large error to every channel it falls in; it takes
    instead the median over frames of its good fluxes times the frame's ratio
    of good flux to the median (over the frame's good columns), which follows
    the frame's light curve and adds no information of its own.

    Parameters
    ----------
    flux, flux_err : ndarray, shape (n_frames, n_columns)
    bad : ndarray of bool, same shape

    Returns
    -------
    flux, flux_err : ndarray
        Copies with the bad entries filled (NaN where a column has no good frame).
    """
    bad = bad | ~np.isfinite(flux)
    good = np.where(bad, np.nan, flux)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # all-bad columns
        median = np.nanmedian(good, axis=0)
        median_err = np.nanmedian(np.where(bad, np.nan, flux_err), axis=0)
    ref = np.where(bad | ~np.isfinite(median), 0.0, median)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(~bad, np.nan_to_num(good), 0.0).sum(axis=1) / ref.sum(axis=1)
    filled = np.where(bad, median[None, :] * ratio[:, None], flux)
    filled_err = np.where(bad, median_err[None, :] * np.abs(ratio)[:, None], flux_err)
    return filled, filled_err


def usable_columns(flux) -> np.ndarray:
    """Columns with a finite flux in every frame (a light curve sums the same columns throughout)."""
    return np.isfinite(flux).all(axis=0)


def bin_channels(flux, flux_err, edges, columns_ok):
    """Sum fluxes over the usable columns of each channel and over all of them (white).

    Parameters
    ----------
    flux, flux_err : ndarray, shape (n_frames, n_columns)
    edges : ndarray, shape (n_channels, 2)
    columns_ok : ndarray of bool, shape (n_columns,)

    Returns
    -------
    white, white_err : ndarray, shape (n_frames,)
    channels, channels_err : ndarray, shape (n_frames, n_channels)
        NaN for a channel without a usable column.
    """
    f = np.where(columns_ok, flux, 0.0)
    v = np.where(columns_ok, flux_err, 0.0) ** 2
    which = np.zeros((flux.shape[1], len(edges)))
    for k, (lo, hi) in enumerate(edges):        # a loop over channels, not pixels
        which[lo:hi, k] = 1.0
    channels, channels_var = f @ which, v @ which
    empty = (columns_ok.astype(float) @ which) == 0
    channels[:, empty] = np.nan
    channels_var[:, empty] = np.nan
    return f.sum(axis=1), np.sqrt(v.sum(axis=1)), channels, np.sqrt(channels_var)


def normalise(flux, flux_err, out_of_transit=None):
    """Divide light curves (frames on axis 0) by their median over the out-of-transit frames
    (all frames when None)."""
    ref = flux if out_of_transit is None or not np.any(out_of_transit) else flux[out_of_transit]
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.nanmedian(ref, axis=0)
        return flux / scale, flux_err / np.abs(scale)


def transit_shape(transit, t0, times, rp=None):
    """The transit's shape ``s(t)``: 1 at full depth for a box, ``(1 - lc) / rp**2``
    for batman.

    Parameters
    ----------
    transit : TransitModel
        :class:`~.transit_fit.transit.TransitModel` (box or batman).
    t0 : float
        Mid-transit time, MJD.
    times : ndarray
        Mid-exposure MJD.
    rp : float, optional
        Rp/R* the batman shape is computed for (default 0.1).

    Returns
    -------
    ndarray
    """
    rp = 0.1 if rp is None or not rp > 0 else float(rp)
    t = np.asarray(times, float)
    return (1.0 - transit.light_curve(t, rp, t0)) / rp ** 2


@dataclass
class Depth:
    """A fitted transit depth.

    Attributes
    ----------
    depth, depth_err : float
        Fractional depth and its 1-sigma error (from the residual scatter).
    level : float
        Out-of-transit level ``c`` of the light curve.
    model : ndarray
        The fitted light curve at the frames' times.
    """

    depth: float
    depth_err: float
    level: float
    model: np.ndarray


def fit_depth(flux, shape) -> Depth:
    """Least-squares ``flux = c (1 - depth * shape)`` with its error from the scatter.

    Parameters
    ----------
    flux : ndarray, shape (n_frames,)
        Light curve (NaN frames ignored).
    shape : ndarray, shape (n_frames,)
        :func:`transit_shape`.

    Returns
    -------
    Depth
        NaN when there are fewer than 3 finite frames or no in- or out-of-transit frame.
    """
    ok = np.isfinite(flux) & np.isfinite(shape)
    y, s = flux[ok], shape[ok]
    if ok.sum() < 3 or not (s > 0).any() or not (s == 0).any() and s.min() > 0.5 * s.max():
        return Depth(np.nan, np.nan, np.nan, np.full(len(flux), np.nan))
    a = np.stack([np.ones_like(s), -s], axis=1)              # flux = c - (c depth) s
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - a @ coef
    dof = max(len(y) - 2, 1)
    cov = np.linalg.inv(a.T @ a) * (resid @ resid) / dof
    c, cd = coef
    depth = cd / c
    # Error of the ratio cd / c by propagation (c's share is small but kept).
    jac = np.array([-cd / c ** 2, 1.0 / c])
    err = float(np.sqrt(jac @ cov @ jac))
    return Depth(float(depth), err, float(c), c * (1.0 - depth * shape))


def transit_depth(transit, t0, times, flux) -> Depth:
    """Depth of one light curve with a transit model (batman: the shape recomputed once
    for the fitted Rp/R*), no systematics: a quick look (stage 7 fits the systematics)."""
    result = fit_depth(flux, transit_shape(transit, t0, times))
    if transit.model == "batman" and np.isfinite(result.depth) and result.depth != 0:
        result = fit_depth(flux, transit_shape(transit, t0, times, rp=np.sqrt(abs(result.depth))))
    return result
