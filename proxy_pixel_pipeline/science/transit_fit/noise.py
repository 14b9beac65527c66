"""Red noise in a fit's residuals: the time-averaging (binning) test.

For white noise the RMS of residuals averaged in bins of ``N`` frames falls as
``sigma_1 / sqrt(N)`` (Pont, Zucker & Queloz 2006; Winn et al. 2008); here
the residuals are centred on their mean first, so the expectation of the RMS
over ``M`` bins is ``sigma_1 / sqrt(N) * sqrt((M - 1) / M)``.  Correlated
noise (systematics the model misses) falls more slowly; the ratio of the
measured to the expected RMS, averaged over the bin sizes ``N >= 2``, is the
red-noise factor ``beta`` (~1 for white noise).  Bins are consecutive frames
in time order; by default they may span the gaps between orbit windows (the
timescales that matter for a depth are the transit's, longer than one
window), or stay inside groups (``groups``).

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


def _bin_starts(n, group_edges, size):
    """First index of every bin of ``size`` consecutive frames inside each group."""
    starts = [np.arange(lo, hi - size + 1, size) for lo, hi in zip(group_edges[:-1],
                                                                   group_edges[1:])]
    return np.concatenate(starts) if starts else np.empty(0, int)


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
        Frames per bin; default up to 40 sizes from 1 to the largest that
        still gives ``min_bins`` bins (every size when there are fewer).
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
    ok = np.flatnonzero(np.isfinite(r))
    t = np.arange(r.size, dtype=float) if times is None else np.asarray(times, float).ravel()
    g = np.zeros(r.size, int) if groups is None else np.asarray(groups).ravel()
    order = ok[np.lexsort((t[ok], g[ok]))]          # by group, then time: groups contiguous
    r = r[order]
    r = r - r.mean() if r.size else r
    gs = g[order]
    edges = np.concatenate([[0], np.flatnonzero(np.diff(gs) != 0) + 1, [r.size]])
    prefix = None
    if covariance is not None:
        C = np.asarray(covariance, float)[np.ix_(order, order)]
        if np.trace(C) > 0:
            C = C * (np.sum(r ** 2) / np.trace(C))
            prefix = np.zeros((r.size + 1, r.size + 1))
            prefix[1:, 1:] = np.cumsum(np.cumsum(C, axis=0), axis=1)
    if bin_sizes is None:
        top = max(r.size // int(min_bins), 1)
        bin_sizes = (np.arange(1, top + 1) if top <= 40
                     else np.unique(np.round(np.geomspace(1, top, 40)).astype(int)))
    cum = np.concatenate([[0.0], np.cumsum(r)])
    sizes, rms, expected, counts = [], [], [], []
    sigma1 = float(np.sqrt(np.mean(r ** 2))) if r.size else np.nan
    for size in np.asarray(bin_sizes, int):
        if size < 1:
            continue
        start = _bin_starts(r.size, edges, int(size))
        m = start.size
        if m < 2:
            continue
        end = start + size
        means = (cum[end] - cum[start]) / size
        sizes.append(int(size))
        rms.append(float(np.sqrt(np.mean(means ** 2))))
        if prefix is None:
            expected.append(sigma1 / np.sqrt(size) * np.sqrt((m - 1.0) / m))
        else:
            block = (prefix[end, end] - prefix[start, end] - prefix[end, start]
                     + prefix[start, start])
            expected.append(float(np.sqrt(max(block.sum(), 0.0) / (size ** 2 * m))))
        counts.append(m)
    sizes, rms, expected = np.array(sizes, int), np.array(rms), np.array(expected)
    big = sizes >= 2
    with np.errstate(invalid="ignore", divide="ignore"):
        beta = float(np.mean(rms[big] / expected[big])) if big.any() else np.nan
    return RedNoise(beta, sizes, rms, expected, np.array(counts, int))
