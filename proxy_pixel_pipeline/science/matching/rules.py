"""The matching rules applied to scored pairs, and the literal rule as a yardstick.

:class:`MatchResult` holds each spectral pixel's best proxies;
:func:`select_best` and :func:`median_result` apply the ``lsq`` / ``median``
rule (see :mod:`proxy_pixel_pipeline.science.matching`) to exactly scored
pairs; :func:`reference_match` applies it literally, one pixel at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from .kernels_numpy import rank_within
from .types import NO_INDEX

__all__ = ["MatchResult", "median_result", "pair_statistics", "reference_match", "select_best"]


@dataclass
class MatchResult:
    """Best proxies of a set of spectral pixels (K per pixel, best first).

    Attributes
    ----------
    index : ndarray of int64, shape (n, K)
        Candidate index of each proxy, -1 where none.
    score : ndarray of float64, shape (n, K)
        Mean squared residual (``lsq``) or residual std (``median``), ADU**2 or ADU.
    median, std : ndarray of float64, shape (n, K)
        Median and population standard deviation of the residual series, ADU.
    n_samples : ndarray of int32, shape (n, K)
        Number of dark frames where both pixels are valid.
    """

    index: np.ndarray
    score: np.ndarray
    median: np.ndarray
    std: np.ndarray
    n_samples: np.ndarray

    @classmethod
    def empty(cls, n, k):
        """A result with no proxy for ``n`` pixels."""
        nan = np.full((n, k), np.nan)
        return cls(np.full((n, k), -1, np.int64), nan, nan.copy(), nan.copy(),
                   np.zeros((n, k), np.int32))

    @classmethod
    def concatenate(cls, parts):
        """Stack results of consecutive blocks."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("index", "score", "median", "std", "n_samples")))


def pair_statistics(spectral, candidates, pairs_i, pairs_j):
    """Exact residual statistics of listed pairs, in float64.

    Parameters
    ----------
    spectral, candidates : ndarray, shape (n, n_darks)
        Dark series (NaN = missing).
    pairs_i, pairs_j : ndarray of int
        Row in ``spectral`` and row in ``candidates`` of each pair.

    Returns
    -------
    lsq, median, std : ndarray of float64
        Mean squared residual, residual median and population std (ADU**2,
        ADU, ADU), NaN for pairs without common samples.
    n : ndarray of int
        Common valid samples.
    """
    return kernels.pair_stats(np.ascontiguousarray(spectral, np.float32),
                              np.ascontiguousarray(candidates, np.float32),
                              np.asarray(pairs_i), np.asarray(pairs_j))


def select_best(pairs_i, pairs_j, stats, b, method, k_best, n_median):
    """Apply the matching rule to scored pairs; return a MatchResult of ``b`` pixels.

    ``pairs_j`` are candidate indices in the caller's order; they break ties,
    as a loop over candidates in that order would (first one wins).

    Parameters
    ----------
    pairs_i, pairs_j : ndarray of int, shape (p,)
        Spectral row (0 .. b-1) and candidate index of each pair.
    stats : tuple of ndarray, shape (p,)
        ``(lsq, median, std, n)`` of each pair (ADU**2, ADU, ADU, samples),
        as from :func:`pair_statistics`; pairs with a non-finite ``lsq`` are
        ignored.
    b : int
        Spectral pixels of the result.
    method : {'median', 'lsq'}
        Matching rule.
    k_best : int
        K, proxies kept per pixel.
    n_median : int
        k of the median rule.

    Returns
    -------
    MatchResult
        Shape (b, K).
    """
    lsq, median, std, n = stats
    ok = np.isfinite(lsq)
    pairs_i, pairs_j = pairs_i[ok], pairs_j[ok]
    lsq, median, std, n = lsq[ok], median[ok], std[ok], n[ok]
    if method == "lsq":
        order = np.lexsort((pairs_j, lsq, pairs_i))
    else:
        # Step 1: the n_median pairs of each pixel with |median| closest to zero.
        absmed = np.abs(median)
        order = np.lexsort((pairs_j, std, absmed, pairs_i))
        rank = rank_within(pairs_i[order])
        order = order[rank < n_median]
        # Step 2: among those, smallest std first.
        order = order[np.lexsort((pairs_j[order], absmed[order], std[order], pairs_i[order]))]
    rank = rank_within(pairs_i[order])
    order, rank = order[rank < k_best], rank[rank < k_best]
    out = MatchResult.empty(b, k_best)
    rows = pairs_i[order]
    out.index[rows, rank] = pairs_j[order]
    out.score[rows, rank] = lsq[order] if method == "lsq" else std[order]
    out.median[rows, rank] = median[order]
    out.std[rows, rank] = std[order]
    out.n_samples[rows, rank] = n[order]
    return out


def median_result(keys, k_best):
    """The K best of the kept keys by std (ties: |median|, index), as a MatchResult.

    Parameters
    ----------
    keys : MedianKeys
        Each pixel's k best keys after the median scans.
    k_best : int
        K, proxies kept per pixel.

    Returns
    -------
    MatchResult
        Shape (b, K).
    """
    b, k = keys.index.shape
    found = keys.index < NO_INDEX
    rows = np.repeat(np.arange(b), k)[found.ravel()]
    std, med, idx = keys.std[found], keys.abs_median[found], keys.index[found]
    order = np.lexsort((idx, med, std, rows))
    rank = rank_within(rows[order])
    order, rank = order[rank < k_best], rank[rank < k_best]
    out = MatchResult.empty(b, k_best)
    r = rows[order]
    out.index[r, rank] = idx[order]
    out.score[r, rank] = std[order]
    out.median[r, rank] = keys.median[found][order]
    out.std[r, rank] = std[order]
    out.n_samples[r, rank] = keys.n[found][order]
    return out


def reference_match(spectral, candidates, method, median_candidates=10, min_samples=10,
                    proxy_count=1):
    """The matching rule applied literally, one spectral pixel at a time (slow).

    The straightforward implementation: for each spectral pixel, residuals
    against every candidate with numpy's nan-functions.  Kept as the yardstick
    that tests and ``bench/stage1.py`` compare :func:`match_block` with; never
    used by the pipeline (about 200x slower).

    Parameters
    ----------
    spectral, candidates : ndarray, shape (n, n_darks)
        Dark series, NaN = missing.
    method : {'median', 'lsq'}
    median_candidates : int
        k of the median rule.
    min_samples : int
        Pairs with fewer common valid samples are ignored.
    proxy_count : int
        Proxies per pixel, best first.

    Returns
    -------
    ndarray of int, shape (n,) if ``proxy_count`` is 1 else (n, proxy_count)
        Candidate indices.
    """
    out = []
    candidates = np.asarray(candidates, np.float64)
    for s in spectral:
        r = s[None].astype(np.float64) - candidates
        n = np.count_nonzero(~np.isnan(r), axis=1)
        with np.errstate(all="ignore"):
            if method == "lsq":
                score = np.nanmean(r ** 2, axis=1)
                score[n < min_samples] = np.inf
                out.append(np.argsort(score, kind="stable")[:proxy_count])
            else:
                med = np.abs(np.nanmedian(r, axis=1))
                std = np.nanstd(r, axis=1)
                med[n < min_samples] = np.inf
                closest = np.lexsort((std, med))[:max(median_candidates, proxy_count)]
                out.append(closest[np.argsort(std[closest], kind="stable")][:proxy_count])
    out = np.array(out)
    return out[:, 0] if proxy_count == 1 else out
