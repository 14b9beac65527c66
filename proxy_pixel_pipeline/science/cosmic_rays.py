"""Cosmic rays: found along each trace pixel's time series, then by L.A.Cosmic.

:func:`temporal_hits` thresholds one frame's time-series z-scores
(:func:`~.series.series_prediction`) and grows the hits into their neighbours
(cosmic rays in low-Earth orbit are often streaks).  :func:`remove_cosmic_rays`
cleans what the series cannot see with L.A.Cosmic (van Dokkum 2001, PASP 113,
1420) through the ``lacosmic`` package: it finds pixels much sharper than the
point-spread function with a Laplacian edge detector compared with the noise
(:func:`~.noise.error_model`).  Its detection needs finite values around each
pixel: pixels outside the spectral region are filled temporarily and masked,
never detected nor returned as cleaned.
"""

from __future__ import annotations

import numpy as np
from lacosmic import remove_cosmics
from scipy import ndimage

__all__ = ["temporal_hits", "grow_hits", "remove_cosmic_rays", "float_copy", "region_mask"]


def float_copy(a):
    """Copy as a float array, keeping float32/float64 as they are."""
    a = np.asarray(a)
    dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64
    return np.array(a, dtype=dtype, copy=True)


def region_mask(region, shape, name="region"):
    """``region`` as a bool mask of ``shape`` (everywhere if None); ValueError naming it if
    its shape differs."""
    if region is None:
        return np.ones(shape, dtype=bool)
    region = np.asarray(region, dtype=bool)
    if region.shape != shape:
        raise ValueError(f"{name} has shape {region.shape}, the frame {shape}")
    return region


def temporal_hits(z, n_sigma=5.0, neighbor_sigma=3.5, grow=2):
    """Cosmic-ray pixels of one frame from its time-series z-scores.

    Parameters
    ----------
    z : ndarray, shape (n_rows, n_columns)
        The frame's z-scores from :func:`series_prediction` (NaN where empty
        or outside the trace).
    n_sigma : float
        A hit stands this many sigma above its prediction (typ. 5); 0 finds
        nothing.
    neighbor_sigma : float
        Pixels touching a hit (8-connected) above this many sigma are part of
        it (typ. 3.5: the faint ends of a streak; 2.5 doubled the false flags).
    grow : int
        Growth steps.

    Returns
    -------
    ndarray of bool, shape of ``z``
    """
    z = np.nan_to_num(np.asarray(z, float), nan=-np.inf)
    if n_sigma <= 0:
        return np.zeros(z.shape, bool)
    hits = z > n_sigma
    if hits.any() and grow:
        hits = ndimage.binary_dilation(hits, np.ones((3, 3), bool), iterations=grow,
                                       mask=z > neighbor_sigma)
    return hits


def grow_hits(hits, rings):
    """``hits`` and the ``rings`` rings of pixels around them (8-connected; ``cosmic_grow``):
    the pixels a cosmic ray's charge may reach below any threshold.  The ring stage 5
    replaces and the one its refit of the bins leaves out are both this one.

    Parameters
    ----------
    hits : ndarray of bool
    rings : int
        Typ. 1; 0 returns ``hits`` as they are.

    Returns
    -------
    ndarray of bool, shape of ``hits``
    """
    hits = np.asarray(hits, bool)
    if not rings or not hits.any():
        return hits
    return ndimage.binary_dilation(hits, np.ones((3, 3), bool), iterations=int(rings))


def _fill_nearest(data, bad):
    """Replace ``bad`` pixels by the value of the nearest good pixel.

    A nearest-value extension (like an image border in 'nearest' mode)
    neither creates an edge at the region border, which the Laplacian would
    take for a cosmic ray, nor a hole.
    """
    idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
    return data[tuple(idx)]


def _bounding_box(mask, margin):
    """Slices of the bounding box of ``mask``, grown by ``margin`` pixels."""
    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    return (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
            slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))


def remove_cosmic_rays(frame, error, *, contrast=2.0, cr_threshold=5.0, neighbor_threshold=2.0,
                       maxiter=4, region=None):
    """Detect and clean cosmic rays with L.A.Cosmic (``lacosmic.remove_cosmics``).

    Pixels outside ``region``, and NaN pixels, are filled temporarily with
    the nearest valid value and passed to L.A.Cosmic as masked, so they
    neither create false detections at the region border nor get detected.
    Detected pixels are replaced by L.A.Cosmic with the median of the
    unmasked, undetected pixels of a 5 x 5 window.

    Parameters
    ----------
    frame : array_like, shape (n_rows, n_columns)
        Infilled Final Frame, ADU (see :func:`infill`).
    error : float or array_like
        1-sigma noise of each pixel, ADU (see :func:`error_model`).  Values
        that are not finite or <= 0 are replaced by the median error of the
        region.
    contrast : float
        Minimum contrast between the Laplacian image and the fine-structure
        image (van Dokkum's ``f_lim``): how much sharper than the instrument
        profile a feature must be to be a cosmic ray.  About 2 for a
        critically sampled image (the CUTE trace, FWHM ~ 6 pixels
        across, is well sampled), 4-5 for undersampled images, 1-2 for
        oversampled ones.  Default 2.
    cr_threshold : float
        Detection threshold on the Laplacian signal-to-noise ratio, in
        sigma.  Typical 4.5-5 (default 5); lower finds fainter cosmic rays
        and more noise.
    neighbor_threshold : float
        Lower threshold (sigma) for the neighbours of detected pixels, to
        grow detections over the full extent of a hit or streak.  Typical
        0.3 x to 0.5 x ``cr_threshold``; default 2.
    maxiter : int
        Maximum number of detect-and-clean iterations (default 4); the loop
        stops earlier when an iteration finds nothing new.
    region : array_like of bool, optional
        Pixels to clean, e.g. the spectral-pixel mask; default everywhere.

    Returns
    -------
    cleaned : ndarray
        New array (float dtype of the input).  Outside ``region``, and at
        NaN pixels, the input is returned unchanged (so a Final Frame stays
        NaN outside the trace).
    cr_mask : ndarray of bool
        True for pixels detected as cosmic rays; always False outside
        ``region`` and at NaN pixels.
    """
    data = float_copy(frame)
    if data.ndim != 2:
        raise ValueError(f"frame must be 2D, got shape {data.shape}")
    region = region_mask(region, data.shape)
    valid = region & np.isfinite(data)
    cr_mask = np.zeros(data.shape, dtype=bool)
    if not valid.any():
        return data, cr_mask

    err = np.array(np.broadcast_to(np.asarray(error, dtype=float), data.shape))
    good_err = np.isfinite(err) & (err > 0)
    if not (good_err & valid).any():
        raise ValueError("error has no finite, positive value inside the region")
    err[~good_err] = np.median(err[good_err & valid])

    # L.A.Cosmic sees ~5 pixels around each pixel (Laplacian, 5x5 and 3+7
    # median filters, two growth steps): work on the bounding box of the
    # valid pixels plus a margin, a few times faster for a trace band.
    box = _bounding_box(valid, margin=8)
    v = valid[box]
    bad = ~v
    work = data[box].astype(np.float64)
    if bad.any():
        work = _fill_nearest(work, bad)
    cleaned, detected = remove_cosmics(work, contrast, cr_threshold, neighbor_threshold,
                                       error=err[box], mask=bad if bad.any() else None,
                                       maxiter=maxiter)
    # L.A.Cosmic grows detections by two pixels after masking: re-apply it.
    cr_mask[box] = detected & v
    out = data.copy()
    out[cr_mask] = cleaned[cr_mask[box]]
    return out, cr_mask

