"""Each trace pixel's prediction from the time series (stage 5: cosmic rays and infill).

A transit visit has tens of science frames of the same trace.  A pixel hit by
a cosmic ray in one frame stands far above what the other frames say it should
hold, which single-frame edge detection (L.A.Cosmic) cannot use; time-series
pipelines reject such outliers along time (e.g. Eureka!'s sigma clipping of
each pixel's series).  The prediction must follow what really changes from
frame to frame, or a transit, a frame with less flux or a shift of the trace
would be flagged:

* the frame's own stage-4 profile model ``M_f`` already follows its flux and
  trace position in each column bin;
* what the model misses at a pixel (absorption lines inside a bin, the exact
  profile shape) is, relative to the model, the same in every frame, so it is
  learnt robustly across frames: ``Q = median_f((F_f - M_f) / s_f)`` with
  ``s_f = max(M_f, floor)``: a relative correction on the trace, which follows
  the frame's flux and a shift of the trace (a line darkens a column at every
  row), an additive one in the wings (``floor``: three times the typical
  noise), where the model is near zero.

A frame's fit can be pulled by a long cosmic-ray streak in its bin (a wrong
constant under the whole bin): a robust per-column level of what is left,
``d_f`` (median over the column's trace pixels of ``F_f - M_f - s_f Q``), is
added.  The prediction ``P_f = M_f + s_f Q + d_f`` is compared with the value in units of
the pixel's noise (:func:`~.noise.error_model` of the prediction and the
background noise, widened for the error of the median): :func:`series_prediction`.
The background noise combines the dark-based value (stage 1's residual std
and stage 2's BKG_ERR) with the series' own robust scatter (photon noise
removed).  The dark-based value is scaled so that its median over the trace
is the series' (the matching picks proxies whose dark residuals happen to be
quiet, which biases it low; cosmic rays in the darks bias it high), capped at
twice the series' own value, and weighs as 20 frames.  The noise is widened
for the prediction's own error (a median over the frames and over the
column), which makes it the one-sigma error of a Final Frame pixel (``ERR``:
pull width against the truth 1.04 on held-out demo data, 0.98 on 6 tiny
frames).
:func:`~.cosmic_rays.temporal_hits` thresholds one frame and grows the hits
into their neighbours (cosmic rays are often streaks).  ``P_f`` is also the better infill
value for empty pixels: it keeps the lines a bin's smooth model lacks.
"""

from __future__ import annotations

import warnings

import numpy as np

from .cosmic_rays import grow_hits, temporal_hits
from .noise import error_model
from .profiles import bin_edges, binned_profiles, fit_final_profiles, model_frame
from .robust import MAD_TO_SIGMA

__all__ = ["series_prediction", "refit_bins_without_hits"]


def series_prediction(final, model, columns, noise, gain, min_frames=5):
    """Each trace pixel's expected value in every frame from the whole series.

    Parameters
    ----------
    final : ndarray, shape (n_frames, n_pixels)
        Final Frame values (science - background) of the trace pixels, ADU;
        NaN where empty.
    model : ndarray, shape (n_frames, n_pixels)
        Each frame's stage-4 profile model at those pixels, ADU.
    columns : ndarray of int, shape (n_pixels,)
        Column of each pixel (the frame's flux scale is per column).
    noise : ndarray, shape (n_frames, n_pixels) or (n_pixels,)
        One-sigma noise of the background subtraction from the darks, ADU:
        the fallback for pixels with too few frames, and (its median) the
        typical value the series' own estimate is shrunk towards.
    gain : float
        e-/ADU (photon noise of the predicted signal).
    min_frames : int
        Fewest valid frames a pixel needs for its correction ``Q``; with
        fewer the prediction is the model itself (typ. 5).

    Returns
    -------
    prediction : ndarray, shape (n_frames, n_pixels)
        ``P_f = M_f + s_f Q + d_f``; where ``Q`` cannot be learnt, ``M_f``
        times the column's measured over predicted flux, plus ``d_f``.
    z : ndarray, shape (n_frames, n_pixels)
        ``(F_f - P_f) / sigma_f``, NaN where ``F_f`` is empty.
    background_noise : ndarray, shape (n_pixels,)
        The pixel's noise, signal's photon noise aside, ADU: ``z``'s sigma
        is ``error_model(prediction, background_noise, gain)``.
    """
    final = np.asarray(final, np.float64)
    model = np.asarray(model, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        floor = 3.0 * np.nanmedian(np.broadcast_to(np.asarray(noise, float), final.shape))
    scale = np.maximum(np.nan_to_num(model), floor if np.isfinite(floor) and floor > 0 else 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # pixels empty in every frame
        n_valid = np.isfinite(final).sum(axis=0)
        correction = np.nanmedian((final - model) / scale, axis=0)
    learnt = (n_valid >= min_frames) & np.isfinite(correction)
    prediction = model + scale * np.where(learnt, correction, 0.0)
    # Pixels without a series of their own (empty in most frames: hot, no proxy)
    # take the model scaled by their column's own flux, so an infill keeps lines.
    prediction = np.where(learnt, prediction, model * _column_ratio(final, model, learnt, columns))
    prediction += _column_level(final - prediction, columns)
    background = _series_noise(final - prediction, prediction, n_valid, noise, gain, min_frames)
    per_column = np.bincount(columns)[columns]
    # A median of n values has the variance of a mean of 2n/pi: the errors of the
    # median over the frames (Q) and over the column (d_f) add to the noise.
    background = background * np.sqrt(1.0 + np.pi / (2.0 * np.maximum(n_valid, 1))
                                      + np.pi / (2.0 * np.maximum(per_column, 1)))
    sigma = error_model(np.where(np.isfinite(prediction), prediction, 0.0), background, gain)
    z = (final - prediction) / sigma
    return prediction, z, background


def _series_noise(residual, prediction, n_valid, prior, gain, min_frames, weight=20.0):
    """Background noise per pixel from the darks and from its residuals along the series.

    The series' ``1.4826 MAD`` of the residuals, less the mean photon
    variance of the prediction, averaged in variance with the pixel's
    dark-based value as ``weight`` frames' worth of prior; the prior is
    scaled to the series' median and capped at twice the series' value (but
    not below the trace's typical one).  Measured on held-out demo data:
    clean pixels above 5 sigma 0.8e-4 (2.5e-4 from the series alone).
    """
    prior = np.broadcast_to(np.asarray(prior, float), residual.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        typical = np.nanmedian(prior)
        mad = np.nanmedian(np.abs(residual - np.nanmedian(residual, axis=0)), axis=0)
        photon = np.nanmean(np.maximum(prediction, 0.0), axis=0) / gain
    measured = np.maximum((MAD_TO_SIGMA * mad) ** 2 - photon, 0.0)
    fallback = np.nanmedian(prior, axis=0)
    judged = n_valid >= min_frames
    if judged.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            factor = np.nanmedian(np.sqrt(measured[judged])) / np.nanmedian(fallback[judged])
        if np.isfinite(factor) and factor > 0:
            fallback, typical = fallback * factor, typical * factor
    capped = np.minimum(fallback, np.maximum(2.0 * np.sqrt(measured), typical))
    variance = (n_valid * measured + weight * capped ** 2) / (n_valid + weight)
    return np.where((n_valid >= min_frames) & np.isfinite(variance), np.sqrt(variance), fallback)


def _column_ratio(final, model, learnt, columns):
    """Each frame's measured flux over the smooth model's in each column (learnt, valid
    pixels), per pixel: a line inside the bin shows as a ratio below 1."""
    use = learnt[None, :] & np.isfinite(final)
    n_columns = int(columns.max()) + 1 if len(columns) else 0
    measured = np.stack([np.bincount(columns, np.where(u, f, 0.0), n_columns)
                         for f, u in zip(final, use)])
    predicted = np.stack([np.bincount(columns, np.where(u, m, 0.0), n_columns)
                          for m, u in zip(model, use)])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = measured / predicted
    ratio = np.where(np.isfinite(ratio) & (predicted > 0), np.clip(ratio, 0.5, 2.0), 1.0)
    return ratio[:, columns]


def _column_level(residual, columns):
    """``d_f``: median residual of each frame over each column's pixels, per pixel."""
    order = np.argsort(columns, kind="stable")
    cols = columns[order]
    starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
    counts = np.diff(np.r_[starts, len(cols)])
    slot = np.arange(len(cols)) - np.repeat(starts, counts)       # position within its column
    grid = np.full((len(residual), counts.max() if len(counts) else 0, len(starts)), np.nan)
    grid[:, slot, np.repeat(np.arange(len(starts)), counts)] = residual[:, order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # columns empty in a frame
        level = np.nan_to_num(np.nanmedian(grid, axis=1))
    out = np.empty_like(residual)
    out[:, order] = level[:, np.repeat(np.arange(len(starts)), counts)]
    return out


def refit_bins_without_hits(final, model, z, trace, shape, reference, bin_width,
                            n_sigma=5.0, neighbor_sigma=3.5, grow=0):
    """Refit, without its time-series hits, each frame's profile in the bins that hold them.

    A long cosmic-ray streak along a row of a bin enters the bin's median
    profile, so the frame's stage-4 fit (and the prediction built on it) is
    pulled there; the fit of those bins is made again (stage 4's own
    :func:`~.profiles.fit_final_profiles`, the Median Frame fit as reference)
    with the hits (:func:`~.cosmic_rays.temporal_hits`) left out.

    Parameters
    ----------
    final, model, z : ndarray, shape (n_frames, n_trace)
        Each frame's trace pixels: Final Frame values, stage-4 model, z-scores.
    trace : ndarray of int
        Flat indices of the trace pixels in a frame of ``shape``.
    shape : (int, int)
    reference : ProfileFits
        The Median Frame fits (stage 3).
    bin_width : int
        Columns per bin, as stage 4 used.
    n_sigma, neighbor_sigma : float
        The hit thresholds (``temporal_sigma``, ``temporal_neighbor_sigma``).
    grow : int
        Rings around the hits left out too (``cosmic_grow``: their charge
        shared below the thresholds).

    Returns
    -------
    bool
        Whether any frame was refitted; ``model`` is updated in place.
    """
    edges = bin_edges(shape[1], bin_width)
    refitted = False
    for f in range(len(final)):
        frame_z = np.full(shape, np.nan)
        frame_z.ravel()[trace] = z[f]
        hits = temporal_hits(frame_z, n_sigma, neighbor_sigma)
        if not hits.any():
            continue
        hits = grow_hits(hits, grow)
        bins = np.unique(np.searchsorted(edges, np.nonzero(hits)[1], side="right") - 1)
        frame = np.full(shape, np.nan, np.float32)
        frame.ravel()[trace] = final[f]
        frame[hits] = np.nan
        _, profiles = binned_profiles(frame, bin_width)
        fitted = fit_final_profiles(profiles, reference)
        image = np.full(shape, np.nan)
        image.ravel()[trace] = model[f]
        columns = np.concatenate([np.arange(edges[b], edges[b + 1]) for b in bins])
        image[:, columns] = model_frame(fitted, shape)[:, columns]
        model[f] = image.ravel()[trace]
        refitted = True
    return refitted
