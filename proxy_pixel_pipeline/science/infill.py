"""Infill of Final Frames from the profile fits, and cosmic-ray removal.

Stage 5 of the pipeline.  A Final Frame (science - background) is defined on
the spectral-trace pixels only and has holes: hot or missing pixels that had
no proxy, pixels lost in the downlink, and negative pixels left by an outlier
proxy or an over-subtraction.  :func:`infill` replaces those with the Final
Frame's own double-Gaussian model (:func:`~proxy_pixel_pipeline.science.profiles.model_frame`).

The complete frame is then cleaned of cosmic rays, frequent in low-Earth
orbit and often long streaks, with L.A.Cosmic (van Dokkum 2001, PASP 113,
1420), through the ``lacosmic`` package: :func:`remove_cosmic_rays`.
L.A.Cosmic finds pixels much sharper than the point-spread function with a
Laplacian edge detector compared with the noise, so it needs the per-pixel
noise of the frame, :func:`error_model`.  Its detection also needs finite
values around each pixel: pixels outside the spectral region are filled
temporarily and masked, never detected nor returned as cleaned.

All functions are vectorized and return new arrays; inputs are never modified.
"""

from __future__ import annotations

import numpy as np
from lacosmic import remove_cosmics
from scipy import ndimage

__all__ = ["infill", "remove_cosmic_rays", "error_model", "background_noise_image",
           "subtraction_noise"]


def _float_copy(a):
    """Copy as a float array, keeping float32/float64 as they are."""
    a = np.asarray(a)
    dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64
    return np.array(a, dtype=dtype, copy=True)


def _region_mask(region, shape, name="region"):
    if region is None:
        return np.ones(shape, dtype=bool)
    region = np.asarray(region, dtype=bool)
    if region.shape != shape:
        raise ValueError(f"{name} has shape {region.shape}, the frame {shape}")
    return region


def infill(final_frame, model, region=None, fill_negative=True, negative_limit=0.0):
    """Replace empty (and negative) pixels of a Final Frame by the model.

    Parameters
    ----------
    final_frame : array_like, shape (n_rows, n_columns)
        Final Frame (science - background) in ADU; NaN marks empty pixels.
    model : array_like, same shape
        Model of the frame in ADU, normally
        ``profiles.model_frame(fit_final_profiles(...), shape)``.
    region : array_like of bool, same shape, optional
        Pixels that may be infilled, e.g. the spectral-pixel mask; default
        everywhere.  Pixels outside are returned as they are (NaN stays NaN).
    fill_negative : bool
        Also replace negative pixels (outlier proxy or over-subtracted
        background; the trace cannot be negative).  Default True.
    negative_limit : float or array_like, same shape
        A pixel counts as negative below ``-negative_limit`` ADU.  0 (the
        seed's rule) replaces every negative pixel, which biases flux sums
        upwards wherever the signal is within the noise of zero (only the low
        half of the noise is replaced); a few times the pixel's noise
        replaces only real holes (e.g. 3 sigma, typ. 20-30 ADU for CUTE).

    Returns
    -------
    filled : ndarray
        A new array (float dtype of the input) with the infilled values.
    infilled_mask : ndarray of bool
        True where a pixel was replaced.  Pixels where the model itself is NaN
        (a bin whose fit failed) are left as they are and are not in the mask.
    """
    filled = _float_copy(final_frame)
    model = np.asarray(model)
    if filled.ndim != 2 or model.shape != filled.shape:
        raise ValueError(f"final_frame {filled.shape} and model {model.shape} must be the "
                         "same 2D shape")
    region = _region_mask(region, filled.shape)
    target = np.isnan(filled)
    if fill_negative:
        with np.errstate(invalid="ignore"):
            target |= filled < -np.asarray(negative_limit, dtype=float)
    target &= region & np.isfinite(model)
    filled[target] = model[target]
    return filled, target


def error_model(signal, background_noise, gain):
    """1-sigma noise of each pixel of a Final Frame, in ADU.

    .. math:: \\sigma = \\sqrt{\\max(S, 0)/g + \\sigma_b^2}

    The first term is the photon (Poisson) noise of the trace signal ``S``
    (ADU): ``S*g`` electrons have variance ``S*g`` e-**2, i.e. ``S/g``
    ADU**2.  The second is the noise of the background subtraction.

    Parameters
    ----------
    signal : array_like
        Background-subtracted signal, ADU (e.g. the infilled Final Frame, or
        its smooth model to keep cosmic rays out of the noise estimate).
        Negative values add no photon noise; NaN gives NaN.
    background_noise : float or array_like
        Per-pixel 1-sigma noise of the background subtraction, ADU.  The
        pipeline passes the standard deviation over the dark frames of
        ``spectral - proxy`` for each pixel's proxy match, which already
        contains the read noise of both pixels and the dark-current shot
        noise (typically a few ADU for CUTE: read noise 3-5 e-, gain 1-2).
    gain : float or array_like
        Detector gain, e-/ADU (CUTE: about 1-2).  Must be > 0.

    Returns
    -------
    ndarray
        Noise in ADU, broadcast shape of the inputs.
    """
    gain = np.asarray(gain, dtype=float)
    if np.any(~(gain > 0)):
        raise ValueError(f"gain must be > 0 e-/ADU, got {gain}")
    signal = np.asarray(signal, dtype=float)
    background_noise = np.asarray(background_noise, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.maximum(signal, 0.0) / gain + background_noise**2)


def background_noise_image(spectral, table, shape, gain, read_noise):
    """Per-pixel noise (ADU) of the background subtraction, from the match table.

    The residual std of spectral - proxy over the darks already holds both
    pixels' read and dark shot noise; with K proxies combined, the proxies'
    share shrinks, which this deliberately ignores (a conservative error).
    It never goes below the read noise of two pixels, ``sqrt(2) * read_noise
    / gain``; pixels without a proxy take the median.

    Parameters
    ----------
    spectral : ndarray of int, shape (n, 2)
    table : astropy.table.Table
        Stage 1's ``MATCHES`` table (column ``RES_STD``, ADU).
    shape : (int, int)
    gain : float
        e-/ADU (typ. 1.5).
    read_noise : float
        e- (typ. 3.5).

    Returns
    -------
    ndarray of float32, shape ``shape``
        Noise in ADU (the typical value outside the spectral pixels).
    """
    floor = np.sqrt(2.0) * read_noise / gain
    std = np.asarray(table["RES_STD"], float)
    std = std[:, 0] if std.ndim == 2 else std
    typical = max(np.nanmedian(std), floor) if np.isfinite(std).any() else floor
    noise = np.full(shape, typical, np.float32)
    noise[spectral[:, 0], spectral[:, 1]] = np.where(np.isfinite(std), np.maximum(std, floor), typical)
    return noise


def subtraction_noise(spectral, table, shape, gain, read_noise, bkg_err=None):
    """Per-pixel noise (ADU) of one frame's Science - Background, signal's photon noise aside.

    With one proxy (no ``bkg_err``) it is :func:`background_noise_image`: the
    match residual's std, two pixels' noise.  With K proxies the background
    is much quieter than a pixel: the pixel's own noise (half the variance of
    its median residual std over the K matches, at least its read noise) plus
    the background's uncertainty in this frame (stage 2's ``BKG_ERR``).

    Parameters
    ----------
    spectral, table, shape, gain, read_noise
        As for :func:`background_noise_image`.
    bkg_err : ndarray, shape ``shape``, optional
        Stage 2's ``BKG_ERR`` of this frame, ADU (NaN where unknown).

    Returns
    -------
    ndarray of float32, shape ``shape``
    """
    pair = background_noise_image(spectral, table, shape, gain, read_noise)
    if bkg_err is None:
        return pair
    std = np.asarray(table["RES_STD"], float)
    std = std.reshape(len(std), -1)
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # pixels without proxies
            own_spec = np.fmax(np.nanmedian(std, axis=1) / np.sqrt(2.0), read_noise / gain)
    own = np.full(shape, np.nan)
    own[spectral[:, 0], spectral[:, 1]] = own_spec
    noise = np.hypot(own, bkg_err)
    return np.where(np.isfinite(noise), noise, pair).astype(np.float32)


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
    data = _float_copy(frame)
    if data.ndim != 2:
        raise ValueError(f"frame must be 2D, got shape {data.shape}")
    region = _region_mask(region, data.shape)
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
