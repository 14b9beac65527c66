"""The noise of a Final Frame pixel: photon noise of the signal, and the background's.

Used by stage 5 (its ``ERR`` and the time-series z-scores), by L.A.Cosmic's
threshold and by the score.  A Final Frame pixel is science minus background:
its variance is the signal's photon noise (``signal / gain``, ADU) plus the
noise of the subtraction (the pixel's and its proxies' dark noise, from the
match residuals of stage 1, and stage 2's ``BKG_ERR``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["error_model", "background_noise_image", "subtraction_noise"]


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

