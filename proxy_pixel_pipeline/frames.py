"""Background and Final Frames (stage 2).

For one science frame, the Background Frame gives each spectral pixel the
value of its proxy pixel(s) in that same frame and is empty (NaN) everywhere
else; the Final Frame is Science - Background.  With K > 1 proxies per pixel
their values are combined robustly, so one proxy hit by a cosmic ray or
missing in this frame does not spoil the background.
"""

from __future__ import annotations

import numpy as np

__all__ = ["background_frame", "final_frame", "combine_proxies"]


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
        Clipping threshold for ``clipped_mean`` (typ. 3).

    Returns
    -------
    value, scatter : ndarray, shape (n,)
        Combined background (ADU) and the robust standard deviation of the
        proxies (ADU; NaN with fewer than 2 values).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # pixels with no valid proxy
        med = np.nanmedian(values, axis=1)
        mad = 1.4826 * np.nanmedian(np.abs(values - med[:, None]), axis=1)
        if method == "median":
            value = med
        elif method == "clipped_mean":
            keep = np.abs(values - med[:, None]) <= clip_sigma * mad[:, None]
            keep |= (mad == 0)[:, None] & (values == med[:, None])
            value = np.nanmean(np.where(keep, values, np.nan), axis=1)
        else:
            raise ValueError(f"unknown proxy_combine {method!r}")
    n = np.count_nonzero(~np.isnan(values), axis=1)
    scatter = np.where(n >= 2, mad, np.nan)
    return value, scatter


def background_frame(science, spectral_yx, proxy_yx, method="median", offsets=None):
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

    Returns
    -------
    background, scatter : ndarray, shape (rows, columns)
        Background in ADU, NaN outside the spectral pixels and where no proxy
        value exists; per-pixel scatter of the proxies' values (NaN for K = 1).
    """
    py, px = proxy_yx[..., 0], proxy_yx[..., 1]
    has = py >= 0
    values = np.where(has, science[np.where(has, py, 0), np.where(has, px, 0)], np.nan)
    if offsets is not None:
        values = values + offsets
    if values.shape[1] == 1:
        value, scatter = values[:, 0], np.full(len(values), np.nan)
    else:
        value, scatter = combine_proxies(values, method)
    background = np.full(science.shape, np.nan, np.float32)
    spread = np.full(science.shape, np.nan, np.float32)
    background[spectral_yx[:, 0], spectral_yx[:, 1]] = value
    spread[spectral_yx[:, 0], spectral_yx[:, 1]] = scatter
    return background, spread


def final_frame(science, background):
    """Final Frame = Science - Background (NaN wherever either is NaN)."""
    return (science - background).astype(np.float32)
