"""Spectrum extraction from the cleaned Final Frames: optimal (Horne 1986) and box.

Optimal extraction (Horne, K. 1986, PASP 98, 609) weights every pixel of a
column by its share of the spatial profile ``P`` over its variance ``V``:

.. math:: f = \\frac{\\sum M P D / V}{\\sum M P^2 / V}, \\qquad
          \\mathrm{var}(f) = \\frac{1}{\\sum M P^2 / V}

with ``D`` the background-subtracted data, ``M`` the mask of usable pixels
and ``V = ERR^2 + max(f P, 0) / gain`` (the background uncertainty and read
noise of stage 5's ``ERR`` plus the photon noise of the model signal).  The
variance is iterated with the model, and the pixel of each column that lies
furthest off the model, if more than ``sigma`` standard deviations, is
rejected, one per column per iteration, until none is (Horne's step 8).
``var(f)`` is the exact variance of this linear estimator; with no pixel masked
it equals Horne's ``sum(M P) / sum(M P^2 / V)``.

The spatial profile decides the result (see ``docs/extraction.md``):
:func:`build_template` makes it from the whole series (every frame's trace,
aligned by its measured offset, :func:`trace_offsets`, median-combined,
normalised per column and smoothed along the columns), and
:func:`profile_for_frame` shifts it back to one frame.  Everything here is
vectorised over columns (and frames); nothing imports MPI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

from ..flags import DQFlag, SpectrumFlag
from .robust import MAD_TO_SIGMA

__all__ = ["SpectrumFlag", "EXCLUDED_DQ", "Extraction", "usable_pixels", "normalise_profile",
           "box_extract", "optimal_extract", "error_scale", "column_centroids", "column_widths",
           "trace_widths", "trace_offsets", "shift_rows", "build_template", "nanmedian_frames",
           "profile_for_frame", "fit_profile"]


#: Stage-5 DQ bits of pixels that are not measurements and take no part in the
#: optimal extraction (the profile weighting makes up for them).
EXCLUDED_DQ = (DQFlag.EMPTY_INPUT | DQFlag.HOT | DQFlag.NO_PROXY | DQFlag.INFILLED
               | DQFlag.COSMIC_TEMPORAL | DQFlag.COSMIC_LACOSMIC)


@dataclass
class Extraction:
    """The optimal extraction of a stack of frames, per column.

    Attributes
    ----------
    flux, flux_err : ndarray, shape (n_frames, n_columns)
        Optimal flux and its 1-sigma error, ADU per exposure.
    weight : ndarray, shape (n_frames, n_columns)
        Profile weight of the usable, unrejected pixels (1 = all of it).
    n_rejected : ndarray of int, shape (n_frames, n_columns)
        Pixels rejected as outliers.
    rejected : ndarray of bool, shape (n_frames, n_rows, n_columns)
        The rejected pixels.
    err_scale : ndarray, shape (n_frames,)
        Factor applied to ``err`` (1 unless measured, see :func:`error_scale`).
    """

    flux: np.ndarray
    flux_err: np.ndarray
    weight: np.ndarray
    n_rejected: np.ndarray
    rejected: np.ndarray
    err_scale: np.ndarray

    def flags(self, min_weight) -> np.ndarray:
        """:class:`SpectrumFlag` bits of each column (uint8)."""
        dq = np.zeros(self.flux.shape, np.uint8)
        dq[self.weight < min_weight] |= np.uint8(SpectrumFlag.LOW_WEIGHT)
        dq[self.n_rejected > 0] |= np.uint8(SpectrumFlag.REJECTED)
        dq[~np.isfinite(self.flux)] |= np.uint8(SpectrumFlag.NO_DATA)
        return dq


def usable_pixels(data, dq=None) -> np.ndarray:
    """Pixels that are measurements: finite and without an :data:`EXCLUDED_DQ` bit."""
    ok = np.isfinite(data)
    if dq is not None:
        ok &= (np.asarray(dq).astype(np.int64) & int(EXCLUDED_DQ)) == 0
    return ok


def normalise_profile(profile, region) -> np.ndarray:
    """Profile made positive, zero outside ``region`` and summing to 1 over each column.

    Parameters
    ----------
    profile : array_like, shape (..., n_rows, n_columns)
        Any non-negative-ish spatial profile (NaN counts as 0).
    region : array_like of bool, shape (n_rows, n_columns)
        The extraction aperture (the spectral mask).

    Returns
    -------
    ndarray of float
        Columns with no positive weight are all zero.
    """
    p = np.where(region, np.nan_to_num(np.asarray(profile, float), nan=0.0), 0.0)
    p = np.maximum(p, 0.0)
    total = p.sum(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.0)


def box_extract(data, err, region, gain, err_has_signal=False):
    """Plain sum over the aperture, with its error.

    Parameters
    ----------
    data : ndarray, shape (..., n_rows, n_columns)
        Background-subtracted, infilled frames, ADU (NaN counts as 0).
    err : ndarray, same shape
        1-sigma background and read noise per pixel, ADU.
    region : ndarray of bool, shape (n_rows, n_columns)
    gain : float
        e-/ADU, for the photon noise of the signal.
    err_has_signal : bool
        ``err`` already holds the signal's photon noise (stage 5's ``ERR``):
        it is not added again.

    Returns
    -------
    flux, flux_err : ndarray, shape (..., n_columns)
    """
    d = np.where(region, np.nan_to_num(data, nan=0.0), 0.0)
    photon = 0.0 if err_has_signal else np.maximum(d, 0.0) / gain
    var = np.where(region, np.nan_to_num(err, nan=0.0) ** 2 + photon, 0.0)
    return d.sum(axis=-2), np.sqrt(var.sum(axis=-2))


def optimal_extract(data, err, profile, usable, gain, sigma=5.0, max_iter=None, variance_iter=3,
                    rescale=False, err_has_signal=False):
    """Horne (1986) optimal extraction with iterated variance and outlier rejection.

    Parameters
    ----------
    data : ndarray, shape (n_frames, n_rows, n_columns) or (n_rows, n_columns)
        Background-subtracted frames, ADU.
    err : ndarray, same shape
        1-sigma noise of the background subtraction and read noise, ADU
        (stage 5's ``ERR``); the signal's photon noise is added from the model.
    profile : ndarray, same shape (or broadcastable)
        Spatial profile, non-negative, each column summing to 1 over the
        aperture (:func:`normalise_profile`); zero outside it.
    usable : ndarray of bool, same shape as ``data``
        Pixels to use (:func:`usable_pixels`, within the aperture).
    gain : float
        e-/ADU.
    sigma : float
        A pixel more than ``sigma`` standard deviations off the model is
        rejected (the worst of its column first, one at a time).
    max_iter : int, optional
        Bound on rejection iterations (default: the number of rows).
    variance_iter : int
        Variance updates from the model before rejections start, and after
        the last one.
    rescale : bool
        Measure a scale of ``err`` for each frame from its own residuals
        (:func:`error_scale`) once the first fit has converged, and use
        ``scale * err``; else ``err`` as given (scale 1).
    err_has_signal : bool
        ``err`` already holds the photon noise of the signal (stage 5's ``ERR``
        is its whole error model): the photon variance of the first,
        box-based model ``f0 P`` is taken out of it (down to a floor of a
        tenth of ``err**2``) before the model's own is added and iterated.

    Returns
    -------
    Extraction
    """
    single = np.ndim(data) == 2
    d = np.atleast_3d(np.asarray(data, float)[None] if single else np.asarray(data, float))
    e2 = np.nan_to_num(np.broadcast_to(np.asarray(err, float)[None] if single else err, d.shape),
                       nan=np.inf) ** 2
    p = np.broadcast_to(np.asarray(profile, float)[None] if np.ndim(profile) == 2 else profile,
                        d.shape)
    m = np.broadcast_to(np.asarray(usable, bool)[None] if np.ndim(usable) == 2 else usable,
                        d.shape) & (p > 0) & np.isfinite(d) & np.isfinite(e2)
    m = m.copy()
    d = np.where(m, d, 0.0)
    n_frames, n_rows, n_cols = d.shape
    max_iter = n_rows if max_iter is None else int(max_iter)

    def solve(mask, f_model):
        v = e2 + np.maximum(f_model[:, None, :] * p, 0.0) / gain
        w = np.where(mask, p / v, 0.0)
        den = (w * p).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(den > 0, (w * d).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)
        return f, den, v

    # Start from the profile-weighted box estimate sum(M D) / sum(M P).
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.nan_to_num((m * d).sum(axis=1) / (m * p).sum(axis=1))
    if err_has_signal:
        e2 = np.maximum(e2 - np.maximum(f[:, None, :] * p, 0.0) / gain, 0.1 * e2)
    for _ in range(variance_iter):
        f, den, v = solve(m, np.nan_to_num(f))
    scale = np.ones(n_frames)
    if rescale:
        scale = error_scale(d, e2, np.nan_to_num(f)[:, None, :] * p, m, gain)
        e2 = e2 * scale[:, None, None] ** 2
        for _ in range(variance_iter):
            f, den, v = solve(m, np.nan_to_num(f))
    rejected = np.zeros(d.shape, bool)
    for _ in range(max_iter):
        z2 = np.where(m, (d - np.nan_to_num(f)[:, None, :] * p) ** 2 / v, -1.0)
        worst = np.argmax(z2, axis=1)                                 # (frames, columns)
        worst_z2 = np.take_along_axis(z2, worst[:, None, :], axis=1)[:, 0, :]
        hit = worst_z2 > sigma * sigma
        if not hit.any():
            break
        fi, ci = np.nonzero(hit)
        m[fi, worst[fi, ci], ci] = False
        rejected[fi, worst[fi, ci], ci] = True
        for _ in range(variance_iter):
            f, den, v = solve(m, np.nan_to_num(f))
    with np.errstate(invalid="ignore", divide="ignore"):
        f_err = np.where(den > 0, 1.0 / np.sqrt(np.where(den > 0, den, 1.0)), np.nan)
    result = Extraction(flux=f, flux_err=f_err, weight=(m * p).sum(axis=1),
                        n_rejected=rejected.sum(axis=1), rejected=rejected, err_scale=scale)
    if single:
        result = Extraction(*(getattr(result, k)[0] for k in
                              ("flux", "flux_err", "weight", "n_rejected", "rejected",
                               "err_scale")))
    return result


def error_scale(data, err2, model, usable, gain, min_pixels=50):
    """Factor by which a frame's ``err`` must be scaled to match its residuals.

    Uses the background-dominated pixels (photon variance of the model below
    a quarter of ``err**2``, the trace's wings), where the residual
    ``data - model`` is noise of the background subtraction alone: the scale
    squared is the median of ``residual**2 / err**2`` over the median of a
    chi-squared with one degree of freedom (0.4549), robust to the outliers
    not rejected yet.

    Parameters
    ----------
    data, err2, model : ndarray, shape (n_frames, n_rows, n_columns)
        Data, ``err**2`` and the fitted ``f * P``.
    usable : ndarray of bool, same shape
    gain : float
    min_pixels : int
        Fewer background-dominated pixels give a scale of 1.

    Returns
    -------
    ndarray, shape (n_frames,)
    """
    faint = usable & (np.maximum(model, 0.0) / gain < 0.25 * err2) & (err2 > 0)
    ratio = np.where(faint, (data - model) ** 2 / np.where(faint, err2, 1.0), np.nan)
    out = np.ones(len(data))
    for k in range(len(data)):                 # a loop over frames
        values = ratio[k][faint[k]]
        if len(values) >= min_pixels:
            out[k] = np.sqrt(np.median(values) / 0.45493642311957)
    return out


# ---------------------------------------------------------------------- profiles
def column_centroids(data, region):
    """Flux-weighted row centroid and flux of each column within the aperture.

    Parameters
    ----------
    data : ndarray, shape (..., n_rows, n_columns)
    region : ndarray of bool, shape (n_rows, n_columns)

    Returns
    -------
    centroid, flux : ndarray, shape (..., n_columns)
        NaN centroid where the column holds no positive flux.
    """
    w = np.where(region, np.maximum(np.nan_to_num(data, nan=0.0), 0.0), 0.0)
    rows = np.arange(w.shape[-2], dtype=float)[:, None]
    flux = w.sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = np.where(flux > 0, (w * rows).sum(axis=-2) / np.where(flux > 0, flux, 1.0), np.nan)
    return centroid, flux


def column_widths(data, region, centroid):
    """Flux-weighted rms width (rows) of each column's trace about its centroid.

    Parameters
    ----------
    data : ndarray, shape (..., n_rows, n_columns)
    region : ndarray of bool, shape (n_rows, n_columns)
    centroid : ndarray, shape (..., n_columns)
        From :func:`column_centroids`.

    Returns
    -------
    ndarray, shape (..., n_columns)
        NaN where the column holds no positive flux.
    """
    w = np.where(region, np.maximum(np.nan_to_num(data, nan=0.0), 0.0), 0.0)
    rows = np.arange(w.shape[-2], dtype=float)[:, None]
    flux = w.sum(axis=-2)
    dev2 = (rows - np.nan_to_num(np.expand_dims(centroid, -2))) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(flux > 0, np.sqrt((w * dev2).sum(axis=-2) / np.where(flux > 0, flux, 1.0)),
                        np.nan)


def trace_widths(widths, fluxes) -> np.ndarray:
    """Each frame's trace width (rows): the flux-squared weighted mean of its columns' rms
    widths (:func:`column_widths`), columns off by more than 5 robust sigmas from the
    series' median left out.

    Parameters
    ----------
    widths, fluxes : ndarray, shape (n_frames, n_columns)

    Returns
    -------
    ndarray, shape (n_frames,)
        NaN where unmeasurable.
    """
    w = np.asarray(widths, float)
    ref = np.nanmedian(w, axis=0) if np.isfinite(w).any() else np.zeros(w.shape[1])
    dev = w - ref
    weight = np.where(np.isfinite(dev), np.maximum(np.nan_to_num(fluxes), 0.0) ** 2, 0.0)
    spread = MAD_TO_SIGMA * np.nanmedian(np.abs(np.where(weight > 0, dev, np.nan)))
    if np.isfinite(spread) and spread > 0:
        weight = np.where(np.abs(np.nan_to_num(dev)) <= 5 * spread, weight, 0.0)
    total = weight.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (weight * np.nan_to_num(w)).sum(axis=1) / total, np.nan)


def trace_offsets(centroids, fluxes, clip=5.0) -> np.ndarray:
    """Each frame's offset (rows) of its trace from the series' median trace.

    The offset is the weighted mean over columns of the frame's centroid
    minus the median centroid of the series, weighted by flux squared (the
    inverse variance of a background-limited centroid); columns more than
    ``clip`` robust sigmas off are ignored.

    Parameters
    ----------
    centroids, fluxes : ndarray, shape (n_frames, n_columns)
        From :func:`column_centroids`.

    Returns
    -------
    ndarray, shape (n_frames,)
        Offsets, summing over the series to about 0 (0 where unmeasurable).
    """
    c = np.asarray(centroids, float)
    ref = np.nanmedian(c, axis=0) if np.isfinite(c).any() else np.zeros(c.shape[1])
    dev = c - ref
    w = np.where(np.isfinite(dev), np.maximum(np.nan_to_num(fluxes), 0.0) ** 2, 0.0)
    dev = np.nan_to_num(dev)
    scale = MAD_TO_SIGMA * np.nanmedian(np.abs(np.where(w > 0, dev, np.nan)), axis=1, keepdims=True) \
        if (w > 0).any() else np.ones((len(c), 1))
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.inf)
    w = np.where(np.abs(dev) <= clip * scale, w, 0.0)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w * dev).sum(axis=1) / np.where(total > 0, total, 1.0), 0.0)


def shift_rows(image, dy):
    """``image`` moved by ``dy`` rows (positive: towards higher rows), linear interpolation.

    Parameters
    ----------
    image : ndarray, shape (n_rows, n_columns)
    dy : float

    Returns
    -------
    ndarray
        NaN stays NaN only where both neighbours are; edges repeat.
    """
    if dy == 0:
        return np.array(image, float)
    image = np.asarray(image, float)
    bad = ~np.isfinite(image)
    shifted = ndimage.shift(np.where(bad, 0.0, image), (dy, 0.0), order=1, mode="nearest")
    if bad.any():
        weight = ndimage.shift((~bad).astype(float), (dy, 0.0), order=1, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            shifted = np.where(weight > 0.5, shifted / np.where(weight > 0, weight, 1.0), np.nan)
    return shifted


def build_template(aligned, region, smooth=25, filled=None):
    """The series' spatial profile from its aligned, background-subtracted traces.

    Parameters
    ----------
    aligned : ndarray, shape (n_frames, n_rows, n_columns)
        Every frame's data moved to the common trace position (see
        :func:`shift_rows`, by minus its :func:`trace_offsets`), NaN where
        not usable.
    region : ndarray of bool, shape (n_rows, n_columns)
        The aperture.
    smooth : int
        Columns of the Savitzky-Golay filter (2nd order) that smooths each
        row of the normalised profile along the dispersion axis (1 = none).
    filled : ndarray, same shape as ``aligned``, optional
        The same frames aligned alike but with every pixel's value, the
        infilled ones included (stage 5's frames): where no frame has a
        usable value (a pixel never downlinked, hot or excluded), the
        template takes their median, so that such a pixel keeps its share
        of the column's flux (stage 5 infills it from the frame's profile
        model).  Without it such pixels get no share, and an optimal flux
        measures only the usable pixels' part of the column (-7 % on the
        ``wasp189b`` preset, whose trace has 7.5 % of its flux on pixels
        never downlinked).

    Returns
    -------
    ndarray, shape (n_rows, n_columns)
        Normalised profile (:func:`normalise_profile`).
    """
    region = np.asarray(region, bool)
    median = np.full(region.shape, np.nan)
    median[region] = nanmedian_frames(np.asarray(aligned)[:, region])
    if filled is not None:
        empty = region & ~np.isfinite(median)
        median[empty] = nanmedian_frames(np.asarray(filled)[:, empty])
    profile = _signed_normalise(np.nan_to_num(median), region)
    n_cols = profile.shape[1]
    window = min(int(smooth), n_cols if n_cols % 2 else n_cols - 1)
    if window >= 3:
        window += 1 - window % 2                                        # odd
        profile = signal.savgol_filter(profile, window, min(2, window - 1), axis=1, mode="interp")
    # Normalised by the signed sum, then made positive: clipping the wings' noise
    # first would take its positive half out of the core's share (a +1 % flux
    # bias on the demo data).
    return np.maximum(_signed_normalise(profile, region), 0.0)


def nanmedian_frames(values):
    """Median over axis 0 ignoring NaN (NaN where every value is): ``np.nanmedian(values,
    axis=0)`` by one sort, without its slow masked-array path.

    Parameters
    ----------
    values : ndarray, shape (n_frames, ...)

    Returns
    -------
    ndarray, shape ``values.shape[1:]``
    """
    values = np.sort(np.asarray(values, float), axis=0)          # NaN last
    n = np.isfinite(values).sum(axis=0)
    lo = np.take_along_axis(values, np.maximum((n - 1) // 2, 0)[None], axis=0)[0]
    hi = np.take_along_axis(values, np.maximum(n // 2, 0)[None], axis=0)[0]
    hi = np.where(n % 2 == 1, lo, hi)
    return np.where(n > 0, 0.5 * (lo + hi), np.nan)


def _signed_normalise(profile, region):
    """``profile`` zero outside ``region``, divided by its (signed) column sums where positive."""
    p = np.where(region, profile, 0.0)
    total = p.sum(axis=0, keepdims=True)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.0)


def profile_for_frame(template, offset, region):
    """The template moved to a frame's trace position, keeping each column's sum.

    Parameters
    ----------
    template : ndarray, shape (n_rows, n_columns)
        From :func:`build_template` (each column sums to about 1).
    offset : float
        The frame's trace offset (rows, :func:`trace_offsets`).
    region : ndarray of bool
    """
    shifted = np.where(region, np.maximum(np.nan_to_num(shift_rows(template, offset)), 0.0), 0.0)
    before, after = template.sum(axis=0), shifted.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(after > 0, shifted * (before / np.where(after > 0, after, 1.0)), 0.0)


def fit_profile(model, region):
    """A frame's own stage-4 double-Gaussian model as a profile (its offset removed).

    Parameters
    ----------
    model : ndarray, shape (n_rows, n_columns)
        :func:`~.profiles.model_frame` of the frame's fits with ``offset`` set to 0.
    region : ndarray of bool
    """
    return normalise_profile(model, region)
