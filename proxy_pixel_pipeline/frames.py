"""Background and Final Frames (stage 2).

For one science frame, the Background Frame gives each spectral pixel the
value of its proxy pixel(s) in that same frame and is empty (NaN) everywhere
else; the Final Frame is Science - Background.  With K > 1 proxies per pixel
their values are combined robustly, so one proxy hit by a cosmic ray or
missing in this frame does not spoil the background.
"""

from __future__ import annotations

import numpy as np

__all__ = ["background_frame", "final_frame", "combine_proxies", "background_error"]


def combine_proxies(values, method="median", clip_sigma=3.0):
    """Combine the K proxies' values of each spectral pixel.

    Parameters
    ----------
    values : ndarray, shape (n, K)
        Proxy values in ADU, NaN = proxy missing in this frame or absent.
    method : {'median', 'clipped_mean'}
        ``median``: median of the valid values. ``clipped_mean``: mean of the
        values within ``clip_sigma`` robust standard deviations of their
        median (1.4826 x MAD).
    clip_sigma : float
        Clipping threshold (typ. 3); values beyond it (a proxy hit by a cosmic
        ray) are also left out of ``spread``.

    Returns
    -------
    value : ndarray, shape (n,)
        Combined background (ADU).
    spread : ndarray, shape (n,)
        Standard deviation of the unclipped values (ADU; NaN with fewer than 2).
    used : ndarray of int, shape (n,)
        Number of unclipped values.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # pixels with fewer than 2 valid proxies
        med = np.nanmedian(values, axis=1)
        mad = 1.4826 * np.nanmedian(np.abs(values - med[:, None]), axis=1)
        keep = np.abs(values - med[:, None]) <= clip_sigma * mad[:, None]
        keep |= (mad == 0)[:, None] & (values == med[:, None])
        kept = np.where(keep, values, np.nan)
        if method == "median":
            value = med
        elif method == "clipped_mean":
            value = np.nanmean(kept, axis=1)
        else:
            raise ValueError(f"unknown proxy_combine {method!r}")
        used = np.count_nonzero(keep, axis=1)
        spread = np.where(used >= 2, np.nanstd(kept, axis=1, ddof=1), np.nan)
    return value, spread, used


def background_error(spread, used, method, n_darks, level_bias=0.0, noise_floor=0.0):
    """One-sigma uncertainty of a background combined from K proxies.

    Two parts, both scaled by the proxies' spread ``s`` in this frame (one
    pixel's noise; the spectral pixel's is alike, its proxies were matched to
    it):

    * the combination: ``s / sqrt(m)`` for the clipped mean of the ``m``
      unclipped values, ``sqrt(pi / 2)`` times that for the median (taken
      over all valid values, so this is slightly conservative there);
    * the matched level: each offset (or the match itself) is a median over
      ``N`` darks of spectral minus proxy, so the spectral pixel's own dark
      noise enters all K alike and does not average away:
      ``sqrt(pi / 2) * s * sqrt((1 + 1/m) / N)``;

    plus, in quadrature, a known level difference left uncorrected
    (``level_bias``: the proxies' mean median residual when offsets are not
    applied).  Not included: a drift of the proxies' temperature law beyond
    the darks' temperatures (see docs/proxy_count.md).

    Parameters
    ----------
    spread, used : ndarray, shape (n,)
        From :func:`combine_proxies`.
    method : {'median', 'clipped_mean'}
        The combination used.
    n_darks : ndarray, shape (n,)
        Darks behind each pixel's match (median ``N_SAMPLES`` of its proxies).
    level_bias : ndarray, shape (n,) or float
        Uncorrected level difference, ADU (0 with offsets).
    noise_floor : float
        Least credible single-pixel noise, ADU (read noise and rounding): a
        spread of a few integer values can be 0, a pixel's noise cannot.

    Returns
    -------
    ndarray, shape (n,)
        Uncertainty in ADU (NaN where fewer than 2 proxies were used).
    """
    efficiency = np.pi / 2 if method == "median" else 1.0     # variance of a median / of a mean
    m = np.maximum(used, 1)
    spread = np.maximum(spread, noise_floor)       # NaN stays NaN
    relative = efficiency / m + (np.pi / 2) * (1.0 + 1.0 / m) / np.maximum(n_darks, 1)
    return np.hypot(spread * np.sqrt(relative), level_bias)


def background_frame(science, spectral_yx, proxy_yx, method="median", offsets=None,
                     n_darks=None, level_bias=0.0, noise_floor=0.0):
    """Build the Background Frame of one science frame.

    Parameters
    ----------
    science : ndarray, shape (rows, columns)
        Science frame in ADU (NaN = missing).
    spectral_yx : ndarray of int, shape (n, 2)
        Row and column of each spectral pixel.
    proxy_yx : ndarray of int, shape (n, K, 2)
        Row and column of its K proxies; -1 where there is no proxy.
    method : {'median', 'clipped_mean'}
        How K > 1 proxies' values are combined (see :func:`combine_proxies`).
    offsets : ndarray, shape (n, K), optional
        Added to each proxy's value before combining: the median residual
        spectral - proxy over the darks (ADU), which corrects a proxy whose
        level differs from its spectral pixel's by a constant.
    n_darks, level_bias : ndarray, shape (n,), optional
        Darks behind each match and the uncorrected level difference (ADU),
        for the uncertainty (see :func:`background_error`); without
        ``n_darks`` only the combination's part is counted.
    noise_floor : float
        Least single-pixel noise in ADU for the uncertainty (see
        :func:`background_error`), e.g. ``sqrt((read_noise / gain)**2 + 1/12)``.

    Returns
    -------
    background, error : ndarray, shape (rows, columns)
        Background in ADU, NaN outside the spectral pixels and where no proxy
        value exists; its one-sigma uncertainty in ADU (NaN for K = 1, which
        has no spread to measure).
    """
    py, px = proxy_yx[..., 0], proxy_yx[..., 1]
    has = py >= 0
    values = np.where(has, science[np.where(has, py, 0), np.where(has, px, 0)], np.nan)
    if offsets is not None:
        values = values + offsets
    if values.shape[1] == 1:
        value, error = values[:, 0], np.full(len(values), np.nan)
    else:
        value, spread, used = combine_proxies(values, method)
        error = background_error(spread, used, method, np.inf if n_darks is None else n_darks,
                                 level_bias, noise_floor)
    background = np.full(science.shape, np.nan, np.float32)
    uncertainty = np.full(science.shape, np.nan, np.float32)
    background[spectral_yx[:, 0], spectral_yx[:, 1]] = value
    uncertainty[spectral_yx[:, 0], spectral_yx[:, 1]] = error
    return background, uncertainty


def final_frame(science, background):
    """Final Frame = Science - Background (NaN wherever either is NaN)."""
    return (science - background).astype(np.float32)
