"""Proxy pixel matching: for each spectral pixel, the candidates that behave alike.

A spectral pixel's *proxy* is the non-spectral pixel whose time series over the
dark frames follows its own.  For every pair (spectral pixel ``s``, candidate
``c``) the residual series ``r = s - c`` over the dark frames where both are
valid is scored by one of two rules (Escobar & the CUTE team, Proxy Pixel
Pipeline):

``lsq``
    Mean squared residual, ``mean(r**2) = mean(r)**2 + var(r)``; smallest wins.
``median``
    Two steps: the ``median_candidates`` candidates whose residual median is
    closest to zero, then among those the smallest residual standard deviation
    (population, ``ddof=0``).

The work is ``N_spectral x N_candidates x N_darks``, about 10**13 operations
on a full CUTE frame, so nothing here loops over pixels.  All pair sums come
from matrix products: with zero-filled series ``s0, c0`` and sparse missing
masks ``Ms, Mc``, the sums over the samples both pixels have are ::

    n      = N - |Ms| - |Mc| + Ms @ Mc.T
    sum r  = s0 @ 1 - s0 @ Mc.T - (c0 @ 1 - Ms @ c0.T)
    sum r2 = |s0|^2 + |c0|^2 - 2 s0 @ c0.T - Ms @ (c0^2).T - (s0^2) @ Mc.T

so missing samples are handled exactly, never by dropping pixels, and cost
only in proportion to their number.  The dense product runs in float32 on
frame-centred data (subtracting a per-frame constant leaves every residual
unchanged and removes the ~1000 ADU bias that would otherwise cost float32 its
precision).  Each block of spectral pixels keeps its best ``prefilter_count``
candidates by this score; the final choice is made on those from residuals
recomputed exactly in float64.

The median rule needs the residual medians, which are not sums.  ``fast``
mode applies the rule to the prefiltered candidates only.  ``exact`` mode is
exact for all candidates: since ``|median - mean| <= std`` for any sample,
a candidate with ``|mean| - std`` above the k-th smallest ``|median|`` found
so far cannot enter the k closest to zero, and only the others need their
medians computed.

Results depend only on the block, never on which MPI rank computes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["MatchResult", "CandidateSet", "match_block", "pair_statistics"]

# Relative slack when pruning with float32 statistics: far above float32
# round-off on frame-centred data, far below any real separation.
_PRUNE_SLACK = 1e-3


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


class _Series:
    """Dark time series of a set of pixels prepared for the pair sums.

    Parameters
    ----------
    values : ndarray, shape (n_pixels, n_darks)
        Frame-centred dark values, NaN where missing.
    """

    def __init__(self, values):
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        missing = np.isnan(self.values)
        self.zero = np.where(missing, np.float32(0), self.values)
        self.n_missing = missing.sum(1)
        self.total = self.zero.sum(1, dtype=np.float64)
        self.total_sq = np.einsum("ij,ij->i", self.zero, self.zero, dtype=np.float64)
        # Sparse: lost packets touch few samples, so the corrections are cheap.
        self.missing = sp.csr_matrix(missing, dtype=np.float32) if missing.any() else None

    def __len__(self):
        return len(self.values)


class CandidateSet(_Series):
    """The non-spectral pixels every spectral pixel is compared with.

    Prepared once per rank and reused for every block; see :func:`match_block`.

    Parameters
    ----------
    values : ndarray, shape (n_candidates, n_darks)
        Frame-centred dark values, NaN where missing.
    chunk : int
        Candidates per dense product; bounds memory at
        ``block_size * chunk * 4`` bytes per temporary (typ. 32768).
    """

    def __init__(self, values, chunk=32768):
        super().__init__(values)
        self.chunk = int(chunk)
        self.zero_sq = self.zero * self.zero
        self.zero_t = np.ascontiguousarray(self.zero.T)

    def chunks(self):
        """Yield ``slice`` objects covering the candidates."""
        for start in range(0, len(self), self.chunk):
            yield slice(start, min(start + self.chunk, len(self)))


def _pair_sums(block: _Series, cand: CandidateSet, sl):
    """Return (n, sum r, sum r**2) for every pair of a block and a candidate chunk."""
    n_darks = block.values.shape[1]
    cross = block.zero @ cand.zero_t[:, sl]                        # float32 BLAS
    sum_r2 = block.total_sq[:, None] + cand.total_sq[None, sl] - 2.0 * cross
    sum_r = block.total[:, None] - cand.total[None, sl]
    n = n_darks - block.n_missing[:, None] - cand.n_missing[None, sl]
    n = n.astype(np.float64)
    if block.missing is not None:                                  # spectral sample missing
        sum_r2 -= block.missing @ cand.zero_sq[sl].T
        sum_r += block.missing @ cand.zero[sl].T
    if cand.missing is not None:
        mc = cand.missing[sl]
        if mc.nnz:                                                 # candidate sample missing
            sum_r2 -= (mc @ (block.zero * block.zero).T).T
            sum_r -= (mc @ block.zero.T).T
            if block.missing is not None:                          # both missing
                n += (block.missing @ mc.T).toarray()
    return n, sum_r, sum_r2


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
    r = spectral[pairs_i].astype(np.float64) - candidates[pairs_j]
    valid = ~np.isnan(r)
    n = valid.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r0 = np.where(valid, r, 0.0)
        mean = r0.sum(1) / n
        lsq = (r0 * r0).sum(1) / n
        dev = np.where(valid, r - mean[:, None], 0.0)
        std = np.sqrt((dev * dev).sum(1) / n)
        r.sort(axis=1)                                               # NaN sort last
        lo = np.clip((n - 1) // 2, 0, None)[:, None]
        hi = np.clip(n // 2, 0, r.shape[1] - 1)[:, None]
        median = 0.5 * (np.take_along_axis(r, lo, 1) + np.take_along_axis(r, hi, 1))[:, 0]
    median[n == 0] = np.nan
    return lsq, median, std, n


def _prefilter(block, cand, m, min_samples):
    """Best ``m`` candidates of each block pixel by mean squared residual.

    Returns the candidate indices (block, m) and, for the exact median mode,
    a callable giving every chunk's (mean, std) again.
    """
    b = len(block)
    best_idx = np.zeros((b, 0), np.int64)
    best_val = np.zeros((b, 0), np.float64)
    for sl in cand.chunks():
        n, sum_r, sum_r2 = _pair_sums(block, cand, sl)
        with np.errstate(invalid="ignore", divide="ignore"):
            score = sum_r2 / n
        score[n < min_samples] = np.inf
        idx = np.arange(sl.start, sl.stop)
        if score.shape[1] > m:
            part = np.argpartition(score, m - 1, axis=1)[:, :m]
            val = np.take_along_axis(score, part, 1)
            idx = idx[part]
        else:
            val = score
            idx = np.broadcast_to(idx, score.shape)
        best_idx = np.concatenate([best_idx, idx], 1)
        best_val = np.concatenate([best_val, val], 1)
        if best_idx.shape[1] > m:
            part = np.argpartition(best_val, m - 1, axis=1)[:, :m]
            best_idx = np.take_along_axis(best_idx, part, 1)
            best_val = np.take_along_axis(best_val, part, 1)
    best_idx[~np.isfinite(best_val)] = -1
    return best_idx


def _median_survivors(block, cand, tau, min_samples):
    """Candidate pairs whose median could still be within ``tau`` of zero."""
    rows, cols = [], []
    for sl in cand.chunks():
        n, sum_r, sum_r2 = _pair_sums(block, cand, sl)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sum_r / n
            std = np.sqrt(np.maximum(sum_r2 / n - mean * mean, 0.0))
        bound = np.abs(mean) - std
        slack = _PRUNE_SLACK * (np.abs(mean) + std) + 1e-6
        keep = (bound - slack <= tau[:, None]) & (n >= min_samples)
        i, j = np.nonzero(keep)
        rows.append(i)
        cols.append(j + sl.start)
    return np.concatenate(rows), np.concatenate(cols)


def _select(pairs_i, pairs_j, stats, b, method, k_best, n_median):
    """Apply the matching rule to scored pairs; return a MatchResult of ``b`` pixels."""
    lsq, median, std, n = stats
    ok = np.isfinite(lsq)
    pairs_i, pairs_j = pairs_i[ok], pairs_j[ok]
    lsq, median, std, n = lsq[ok], median[ok], std[ok], n[ok]
    if method == "lsq":
        # Sort by pixel, then score, then candidate index for reproducible ties.
        order = np.lexsort((pairs_j, lsq, pairs_i))
    else:
        # Step 1: the n_median pairs of each pixel with |median| closest to zero.
        order = np.lexsort((pairs_j, std, np.abs(median), pairs_i))
        rank = _rank_within(pairs_i[order])
        order = order[rank < n_median]
        # Step 2: among those, smallest std first.
        order = order[np.lexsort((pairs_j[order], std[order], pairs_i[order]))]
    rank = _rank_within(pairs_i[order])
    order, rank = order[rank < k_best], rank[rank < k_best]
    out = MatchResult.empty(b, k_best)
    rows = pairs_i[order]
    out.index[rows, rank] = pairs_j[order]
    out.score[rows, rank] = lsq[order] if method == "lsq" else std[order]
    out.median[rows, rank] = median[order]
    out.std[rows, rank] = std[order]
    out.n_samples[rows, rank] = n[order]
    return out


def _rank_within(groups):
    """Position of each element within its run of equal (sorted) group labels."""
    if len(groups) == 0:
        return np.zeros(0, np.int64)
    start = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    run = np.diff(np.r_[start, len(groups)])
    return np.arange(len(groups)) - np.repeat(start, run)


def match_block(spectral, cand: CandidateSet, *, method="median", proxy_count=1,
                median_mode="fast", median_candidates=10, prefilter_count=64,
                min_samples=10, pair_batch=1 << 21) -> MatchResult:
    """Find the best proxies of one block of spectral pixels.

    Parameters
    ----------
    spectral : ndarray, shape (b, n_darks)
        Frame-centred dark series of the block's spectral pixels (NaN = missing);
        typ. b = 256.
    cand : CandidateSet
        All candidate (non-spectral, not hot) pixels.
    method : {'median', 'lsq'}
        Matching rule (see module docstring).
    proxy_count : int
        K, proxies kept per spectral pixel, best first (typ. 1; 16 for a
        robust combined background).
    median_mode : {'fast', 'exact'}
        ``fast`` applies the median rule to the ``prefilter_count`` best
        candidates by mean squared residual; ``exact`` to all candidates.
    median_candidates : int
        k, how many candidates with |residual median| closest to zero go to the
        smallest-std step (typ. 10; at least K are used).
    prefilter_count : int
        M, candidates kept per pixel by the matrix-product score (typ. 64).
    min_samples : int
        Pairs with fewer common valid dark samples are not considered.
    pair_batch : int
        Bound on residual values held at once when computing exact statistics.

    Returns
    -------
    MatchResult
        Indices into ``cand`` and statistics, shape (b, K).
    """
    block = _Series(spectral)
    b = len(block)
    n_median = max(median_candidates, proxy_count)
    m = min(max(prefilter_count, proxy_count, n_median if method == "median" else 0), len(cand))
    best = _prefilter(block, cand, m, min_samples)
    pi, pj = np.nonzero(best >= 0)
    pj = best[pi, pj]
    stats = _batched_stats(block.values, cand.values, pi, pj, pair_batch)
    if method == "median" and median_mode == "exact":
        # k-th smallest |median| so far bounds which other candidates can compete.
        tau = _kth_smallest_per_row(pi, np.abs(stats[1]), b, n_median)
        si, sj = _median_survivors(block, cand, tau, min_samples)
        seen = np.zeros(0, np.int64) if len(pi) == 0 else pi * len(cand) + pj
        new = ~np.isin(si * len(cand) + sj, seen)
        si, sj = si[new], sj[new]
        more = _batched_stats(block.values, cand.values, si, sj, pair_batch)
        pi, pj = np.concatenate([pi, si]), np.concatenate([pj, sj])
        stats = tuple(np.concatenate([a, c]) for a, c in zip(stats, more))
    return _select(pi, pj, stats, b, method, proxy_count, n_median)


def _batched_stats(spectral, candidates, pi, pj, pair_batch):
    """:func:`pair_statistics` in batches of bounded memory."""
    step = max(1, pair_batch // max(1, spectral.shape[1]))
    parts = [pair_statistics(spectral, candidates, pi[s:s + step], pj[s:s + step])
             for s in range(0, max(len(pi), 1), step)]
    return tuple(np.concatenate([p[f] for p in parts]) for f in range(4))


def _kth_smallest_per_row(rows, values, n_rows, k):
    """k-th smallest finite value per row label (inf if fewer than k)."""
    tau = np.full(n_rows, np.inf)
    ok = np.isfinite(values)
    rows, values = rows[ok], values[ok]
    order = np.lexsort((values, rows))
    rank = _rank_within(rows[order])
    hit = rank == k - 1
    tau[rows[order][hit]] = values[order][hit]
    return tau
