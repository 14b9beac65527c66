"""The double-Gaussian model of the cross-dispersion profile and the model image.

:func:`double_gaussian` evaluates two Gaussians on a constant at rows ``y``
(peak heights in ADU, centres and widths in pixels); ``_double_gaussian_jac``
is its Jacobian with respect to the parameters in the order of
``PARAM_NAMES``; :func:`model_frame` evaluates per-bin fits over a whole
frame (ADU).
"""

from __future__ import annotations

import numpy as np

__all__ = ["double_gaussian", "model_frame"]


def double_gaussian(y, amp1, mu1, sigma1, amp2, mu2, sigma2, offset):
    """Two Gaussians on a constant, evaluated at rows ``y``.

    Parameters
    ----------
    y : array_like
        Row (cross-dispersion) coordinate, pixels.
    amp1, amp2 : float or array_like
        Peak heights (not areas) of the two Gaussians, ADU.  ``amp2 = 0``
        gives a single Gaussian.
    mu1, mu2 : float or array_like
        Centres, pixels (rows).
    sigma1, sigma2 : float or array_like
        Standard deviations, pixels (CUTE: about 2-5).
    offset : float or array_like
        Constant level, ADU (~1000 in a Median Frame, ~0 in a Final Frame).

    Returns
    -------
    ndarray
        ``amp1*exp(-(y-mu1)**2/(2 sigma1**2)) + amp2*exp(...) + offset``,
        broadcast over all arguments.
    """
    y = np.asarray(y, dtype=float)
    z1 = (y - mu1) / sigma1
    z2 = (y - mu2) / sigma2
    return amp1 * np.exp(-0.5 * z1 * z1) + amp2 * np.exp(-0.5 * z2 * z2) + offset


def _double_gaussian_jac(y, p):
    """Jacobian (n, 7) of :func:`double_gaussian` w.r.t. ``PARAM_NAMES``."""
    a1, m1, s1, a2, m2, s2, _ = p
    z1 = (y - m1) / s1
    z2 = (y - m2) / s2
    g1 = np.exp(-0.5 * z1 * z1)
    g2 = np.exp(-0.5 * z2 * z2)
    return np.column_stack([
        g1, a1 * g1 * z1 / s1, a1 * g1 * z1 * z1 / s1,
        g2, a2 * g2 * z2 / s2, a2 * g2 * z2 * z2 / s2,
        np.ones_like(y),
    ])


def model_frame(fits, shape, rows=None):
    """Evaluate the fitted profiles over every pixel of each bin.

    Parameters
    ----------
    fits : ProfileFits
        Fits with known column ranges (``column_lo``/``column_hi``).
    shape : (int, int)
        ``(n_rows, n_columns)`` of the frame (CUTE: 515 x 2048).
    rows : array_like, optional
        Row coordinate of each image row; default ``0..n_rows-1`` (the
        coordinates the fits were made in).

    Returns
    -------
    ndarray, shape ``shape``
        Model in ADU; each bin's model is constant along its columns.  NaN in
        columns covered by no bin or by a bin with NaN parameters (FAILED).
    """
    n_rows, n_columns = (int(v) for v in shape)
    lo = np.asarray(fits.column_lo, dtype=np.int64)
    hi = np.asarray(fits.column_hi, dtype=np.int64)
    if np.any(lo < 0) or np.any(hi < lo):
        raise ValueError("fits have unknown column ranges: pass edges= when fitting")
    y = np.arange(n_rows, dtype=float) if rows is None else np.asarray(rows, dtype=float)
    if y.shape != (n_rows,):
        raise ValueError(f"rows must have {n_rows} entries")
    # Map each column to its bin (-1: none), then broadcast rows x columns.
    bin_of_col = np.full(n_columns, -1, dtype=np.int64)
    for b in np.argsort(lo, kind="stable"):
        bin_of_col[lo[b]:min(hi[b], n_columns)] = b
    covered = bin_of_col >= 0
    params = np.full((n_columns, 7), np.nan)
    params[covered] = fits.params[bin_of_col[covered]]
    return double_gaussian(y[:, None], *(params[:, j][None, :] for j in range(7)))
