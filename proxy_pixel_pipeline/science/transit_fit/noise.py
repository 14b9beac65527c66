"""Red noise in a fit's residuals: the time-averaging (binning) test.

For white noise the RMS of residuals averaged in bins of ``N`` frames falls as
``sigma_1 / sqrt(N)`` (Pont, Zucker & Queloz 2006; Winn et al. 2008); here
the residuals are centred on their mean first, so the expectation of the RMS
over ``M`` bins is ``sigma_1 / sqrt(N) * sqrt((M - 1) / M)``.  Correlated noise (systematics the model misses)
falls more slowly; the ratio of the measured to the expected RMS, averaged
over the bin sizes ``N >= 2``, is the red-noise factor ``beta`` (~1 for white
noise).  Bins are consecutive frames in time order; by default they may span
the gaps between orbit windows (the timescales that matter for a depth are
the transit's, longer than one window), or stay inside groups (``groups``).

Residuals of a fit are not white even when the noise is: the fit absorbs the
slow components its columns can follow (a ramp per orbit, a drift), so
binned residuals fall faster than ``1 / sqrt(N)`` and ``beta`` comes out
below 1 at large ``N``.  Given the residuals' expected covariance under white
noise, ``C = D (Sigma - A (A^T W A)^-1 A^T) D`` for a (linearized) weighted
least-squares fit with Jacobian ``A`` (``D``: 1 / model, for relative
residuals), the expectation is computed exactly instead:
``expected_N^2 = c * sum_bins(1^T C_bin 1) / (N^2 M)`` with ``c`` set so that
``expected_1`` is the measured RMS.  White noise then gives ``beta ~ 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RedNoise", "red_noise"]


@dataclass(frozen=True)
class RedNoise:
    """The binning test of one residual series.

    Attributes
    ----------
    beta : float
        Mean of ``rms / expected`` over the bin sizes >= 2 (NaN when there are
        too few frames for any).
    bin_sizes : ndarray of int
        Frames per bin, from 1.
    rms : ndarray
        RMS of the bin averages (units of the residuals).
    expected : ndarray
        White-noise expectation ``sigma_1 / sqrt(N) * sqrt((M - 1) / M)``.
    n_bins : ndarray of int
        Bins ``M`` at each size.
    """

    beta: float
    bin_sizes: np.ndarray
    rms: np.ndarray
    expected: np.ndarray
    n_bins: np.ndarray


def _bin_labels(n, groups, size):
    """Bin of each frame (-1: left over) for bins of ``size`` consecutive frames."""
    labels = np.full(n, -1)
    if groups is None:
        m = n // size
        labels[: m * size] = np.repeat(np.arange(m), size)
        return labels, m
    total = 0
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        m = idx.size // size
        labels[idx[: m * size]] = total + np.repeat(np.arange(m), size)
        total += m
    return labels, total


def red_noise(residuals, times=None, groups=None, bin_sizes=None, min_bins=6,
              covariance=None) -> RedNoise:
    """Red-noise factor ``beta`` of a residual series.

    Parameters
    ----------
    residuals : array_like, shape (n,)
        Residuals (e.g. relative flux ``F / model - 1``); non-finite ones are
        ignored.
    times : array_like, shape (n,), optional
        Orders the residuals (default: as given).
    groups : array_like of int, shape (n,), optional
        Bins stay inside a group (e.g. an orbit window).
    bin_sizes : sequence of int, optional
        Frames per bin; default every size from 1 up to the largest that still
        gives ``min_bins`` bins.
    min_bins : int
        Fewest bins a default bin size must give.
    covariance : array_like, shape (n, n), optional
        Expected covariance of the residuals under white noise (any scale);
        without it, the white-noise expectation is ``sigma_1 / sqrt(N) *
        sqrt((M - 1) / M)``.

    Returns
    -------
    RedNoise
    """
    r = np.asarray(residuals, float).ravel()
    ok = np.isfinite(r)
    order = np.argsort(np.asarray(times, float).ravel()[ok], kind="stable") if times is not None \
        else np.arange(ok.sum())
    r = r[ok][order]
    r = r - r.mean() if r.size else r
    g = None if groups is None else np.asarray(groups).ravel()[ok][order]
    C = None
    if covariance is not None:
        keep = np.flatnonzero(ok)[order]
        C = np.asarray(covariance, float)[np.ix_(keep, keep)]
        C = C * (np.sum(r ** 2) / np.trace(C)) if np.trace(C) > 0 else None
    if bin_sizes is None:
        bin_sizes = np.arange(1, max(r.size // int(min_bins), 1) + 1)
    sizes, rms, expected, counts = [], [], [], []
    sigma1 = float(np.sqrt(np.mean(r ** 2))) if r.size else np.nan
    for size in np.asarray(bin_sizes, int):
        if size < 1:
            continue
        labels, m = _bin_labels(r.size, g, int(size))
        if m < 2:
            continue
        inside = labels >= 0
        means = np.bincount(labels[inside], r[inside], minlength=m) / size
        sizes.append(int(size))
        rms.append(float(np.sqrt(np.mean(means ** 2))))
        if C is None:
            expected.append(sigma1 / np.sqrt(size) * np.sqrt((m - 1.0) / m))
        else:
            same = (labels[:, None] == labels[None, :]) & inside[:, None]
            expected.append(float(np.sqrt(max(np.sum(C[same]), 0.0) / (size ** 2 * m))))
        counts.append(m)
    sizes, rms, expected = np.array(sizes, int), np.array(rms), np.array(expected)
    big = sizes >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = float(np.mean(rms[big] / expected[big])) if big.any() else np.nan
    return RedNoise(beta, sizes, rms, expected, np.array(counts, int))
