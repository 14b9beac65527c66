"""Proxy pixel matching: for each spectral pixel, the candidates that behave alike.

A spectral pixel's *proxy* is the non-spectral pixel whose time series over the
dark frames follows its own.  For every pair (spectral pixel ``s``, candidate
``c``) the residual series ``r = s - c`` over the dark frames where both are
valid is scored by one of two rules (Escobar & the CUTE team, Proxy Pixel
Pipeline):

``lsq``
    Mean squared residual, ``mean(r**2) = mean(r)**2 + var(r)``; smallest wins.
``median``
    Two steps: the ``median_candidates`` (k) candidates whose residual median
    is closest to zero, then among those the smallest residual standard
    deviation (population, ``ddof=0``).

Ties go to the earlier candidate (input order), with ``|median|`` then std as
tie-breakers, as a loop over candidates with numpy would choose.  Two stds
that differ only in the last bit (summation order) count as different, so
such near-twins may come out in either order (at the K-th place, either one
is kept); the choice is still the same on any number of ranks.

The work is ``N_spectral x N_candidates x N_darks``, about 10**13 operations
on a full CUTE frame, so the design follows the hardware (``bench/`` measures
it):

Matrix products
    Candidates are split once into *complete* ones (no missing sample: most
    of them) and the few *partial* ones.  For complete candidates ``C`` and a
    block of spectral pixels ``S`` (zero-filled where missing) one float32 BLAS
    product ``G = (-2 S) @ C.T`` gives every pair's sum of squared residuals,
    ``|s|^2 + G + |c|^2``; the residual sum is the rank-one ``sum(s) -
    sum(c)``.  Spectral pixels with missing samples get the exact correction
    ``- sum of c^2 over their missing frames`` from a small product over those
    frames only; partial candidates use the general masked sums, still one
    matrix product each (``n = Ws @ Wc.T``, ``sum r^2 = [S0^2, -2 S0, Ws] @
    [Wc, C0, C0^2].T``, ``sum r = [S0, -Ws] @ [Wc, C0].T``).  Missing samples
    are thus handled exactly, never by dropping pixels.  Data are
    frame-centred (a per-frame constant cancels in every residual) so that
    float32 keeps its precision.  Candidates go in chunks (``candidate_chunk``)
    small enough that ``G`` stays in cache for the scans below.

Compiled scans (:mod:`.match_kernels`: numba when installed, else numpy, with the same results)
    ``lsq`` (and ``median_mode='fast'``): one pass over ``G`` keeps each
    pixel's ``prefilter_count`` (M) best candidates by the float32 score in a
    per-pixel heap whose worst entry is a running threshold; a vectorised
    float32 compare (with a safe rounding margin) screens the values, so almost
    every value costs one compare.  The final choice among the M is made from
    residuals recomputed exactly in float64.  ``fast`` median mode applies the
    median rule to those M only: cheaper, but it can miss members of the k
    closest (see ``bench/RESULTS.md`` for how often).

    ``median_mode='exact'``: each pixel keeps its k best keys ``(|median|,
    std, index)`` found so far; ``tau`` is the k-th ``|median|`` and ``sig``
    the k-th std.  Since ``|median - mean| <= std`` for every sample, a pair
    can enter only if ``|mean| - std <= tau``; and a pair whose std exceeds
    ``sig`` must have ``|median| < tau`` strictly, impossible once ``tau`` is
    0 (the usual case: dark frames are integers, so many residual medians are
    exactly 0).  Both bounds come from the sums above with explicit float32
    rounding margins (never dropping a competitor); a vectorised float32
    screen implied by them passes about 1 pair in 10**3 once the keys settle.
    A passing pair then gets an exact counting test (at least half the
    residuals ``<= tau`` and half ``>= -tau``), its exact std and, only if it
    still competes, its exact median; the keys are updated at once, so the
    bounds tighten during the scan.  Keys start from the ``median_seeds``
    candidates nearest in mean level.  The result equals applying the rule to
    all candidates.

Results depend only on the block and the parameters, never on which MPI rank
computes it, how candidates are chunked, or whether numba is installed (the
environment variable ``PPP_KERNELS=numpy`` or ``numba`` forces one
implementation; see :mod:`.match_kernels`).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from . import match_kernels as kernels
from .match_kernels import (NO_INDEX, CandidateChunk, LsqTerms, MaskedSums, MedianKeys,
                            MissingCorrection, SpectralRows, TopM, rank_within)

__all__ = ["MatchResult", "CandidateSet", "match_block", "pair_statistics", "kernel_threads",
           "estimate_work", "have_numba", "profile_phases", "reference_match"]

_EPS32 = float(np.finfo(np.float32).eps)
# Rounding of float32 sums of squares, as a multiple of n * eps * (|s| + |c|)^2:
# an upper bound on the BLAS accumulation error, so the exact median pruning
# never drops a pair that could compete.
_ERR_FACTOR = 4.0

_PHASES = None     # seconds per phase while profile_phases() is active


@contextmanager
def profile_phases():
    """Collect wall time per phase of :func:`match_block` into the yielded dict."""
    global _PHASES
    old, _PHASES = _PHASES, defaultdict(float)
    try:
        yield _PHASES
    finally:
        _PHASES = old


def _tick(name, start):
    """Add the time since ``start`` to phase ``name`` (if profiling); return now."""
    now = time.perf_counter()
    if _PHASES is not None:
        _PHASES[name] += now - start
    return now


def have_numba():
    """True when the compiled kernels are in use (numba installed, not disabled)."""
    return kernels.BACKEND == "numba"


@contextmanager
def kernel_threads(n_threads):
    """Limit the compiled kernels (numba) to ``n_threads`` threads within the block.

    BLAS threads are limited separately (threadpoolctl); use both so that
    ranks x threads never exceeds the cores.
    """
    with kernels.limit_threads(n_threads):
        yield


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


# --------------------------------------------------------------------------- data


class _Block:
    """A block of spectral pixels prepared for the pair sums (see module docstring)."""

    def __init__(self, values):
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        b, d = self.values.shape
        self.n_darks = d
        missing = np.isnan(self.values)
        self.zero = np.where(missing, np.float32(0), self.values)
        self.n_valid = d - missing.sum(1)
        z64 = self.zero.astype(np.float64)
        self.total = z64.sum(1)
        self.sq = np.einsum("ij,ij->i", z64, z64)
        self.norm = np.sqrt(self.sq)
        self.partial = np.flatnonzero(self.n_valid < d)        # rows with missing samples
        self.complete = np.flatnonzero(self.n_valid == d)
        self.missing = missing
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean = self.total / self.n_valid
        self.m2 = -2.0 * self.zero                              # exact scaling in float32
        self._masked = None

    @property
    def masked(self):
        """The block laid out for the general masked sums (built on first use)."""
        if self._masked is None:
            self._masked = _Masked(self.values, spectral=True)
        return self._masked

    def __len__(self):
        return len(self.values)


class _Masked:
    """Series laid out for the general masked sums as single matrix products.

    Candidates hold ``[W, C0, C0^2]`` (validity, zero-filled values, squares),
    spectral pixels ``[S0^2, -2 S0, W]`` and ``[S0, -W]``, so that (see
    :func:`_masked_sums`) ``sum r^2``, ``sum r`` and ``n`` are one product each.
    """

    def __init__(self, values, spectral):
        values = np.asarray(values, dtype=np.float32)
        valid = ~np.isnan(values)
        w = valid.astype(np.float32)
        zero = np.where(valid, values, np.float32(0))
        d = values.shape[1]
        self.n_darks = d
        z64 = zero.astype(np.float64)
        self.norm = np.sqrt(np.einsum("ij,ij->i", z64, z64))
        if spectral:
            self.sq_side = np.ascontiguousarray(np.hstack([zero * zero, -2 * zero, w]))
            self.lin_side = np.ascontiguousarray(np.hstack([zero, -w]))
        else:
            self.side = np.ascontiguousarray(np.hstack([w, zero, zero * zero]))

    def rows(self, sl):
        """Candidate rows ``sl`` (views)."""
        out = _Masked.__new__(_Masked)
        out.n_darks, out.norm, out.side = self.n_darks, self.norm[sl], self.side[sl]
        return out


def _masked_sums(a: _Masked, b: _Masked, need_sum=True):
    """(n, sum r, sum r^2) of every pair of spectral rows ``a`` and candidate rows ``b``.

    float32 products; n is exact (integers), the sums carry float32 rounding.
    """
    d = a.n_darks
    n = a.sq_side[:, 2 * d:] @ b.side[:, :d].T
    sum_r2 = a.sq_side @ b.side.T
    sum_r = a.lin_side @ b.side[:, :2 * d].T if need_sum else None
    return n, sum_r, sum_r2


class CandidateSet:
    """The non-spectral pixels every spectral pixel is compared with.

    Prepared once per rank and reused for every block; see :func:`match_block`.
    Holds the series reordered (complete candidates first; a copy unless
    ``copy=False``) plus per-candidate sums: about ``n_candidates * (n_darks +
    12) * 4`` bytes, and the candidates with missing samples once more in the
    layout of the general masked sums.

    Parameters
    ----------
    values : ndarray, shape (n_candidates, n_darks)
        Frame-centred dark values, NaN where missing.
    chunk : int
        Candidates per dense product; a block's temporaries take about
        ``block_size * chunk * 4`` bytes each (typ. 4096: small enough that
        they stay in cache for the scans).
    copy : bool
        False: reorder ``values`` in place (when it is a C-contiguous,
        writable float32 array) instead of copying it, to save memory; the
        caller must not use ``values`` afterwards.
    """

    def __init__(self, values, chunk=4096, copy=True):
        values = np.asarray(values, dtype=np.float32)
        self.chunk = int(chunk)
        c, d = values.shape
        self.n_darks = d
        n_valid = d - np.count_nonzero(np.isnan(values), axis=1)
        # Internal order: complete candidates first; `order` maps back.
        complete = np.flatnonzero(n_valid == d)
        self.order = np.concatenate([complete, np.flatnonzero(n_valid < d)])
        self.n_complete = len(complete)
        if copy or not (values.flags.c_contiguous and values.flags.writeable):
            self.series = np.ascontiguousarray(values[self.order])
        else:
            # Stable in-place partition: the (few) partial rows aside, the
            # complete rows moved forward in chunks (a row only moves to a lower
            # position, so no row is overwritten before it is read).
            partial = values[self.order[self.n_complete:]].copy()
            for start in range(0, self.n_complete, 65536):
                src = complete[start:start + 65536]
                values[start:start + len(src)] = values[src]
            values[self.n_complete:] = partial
            self.series = values
        self.n_valid = n_valid[self.order]
        self.position = np.empty(c, np.int64)            # original index -> internal
        self.position[self.order] = np.arange(c)
        self.total = np.empty(c)
        self.sq = np.empty(c)
        for start in range(0, c, 65536):                   # float64 sums, bounded memory
            part = np.nan_to_num(self.series[start:start + 65536].astype(np.float64))
            self.total[start:start + 65536] = part.sum(1)
            self.sq[start:start + 65536] = np.einsum("ij,ij->i", part, part)
        self.norm = np.sqrt(self.sq)
        self.sq32 = self.sq.astype(np.float32)
        self.total32 = self.total.astype(np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.mean = self.total / self.n_valid
        self.by_mean = np.argsort(self.mean, kind="stable")   # for the median seeds
        self.sorted_mean = self.mean[self.by_mean]
        self.partial = _Masked(self.series[self.n_complete:], spectral=False)
        self._buffer = None

    def __len__(self):
        return len(self.series)

    def product(self, left, sl):
        """``left @ series[sl].T`` (float32 BLAS) into a buffer reused across blocks.

        A fresh output per chunk would cost page faults comparable to the
        product itself.  The result is overwritten by the next call.
        """
        shape = (left.shape[0], sl.stop - sl.start)
        size = shape[0] * shape[1]
        if self._buffer is None or self._buffer.size < size:
            self._buffer = np.empty(max(size, left.shape[0] * self.chunk), np.float32)
        out = self._buffer[:size].reshape(shape)
        np.matmul(left, self.series[sl].T, out=out)
        return out

    def chunks(self):
        """Yield ``slice`` objects covering the complete candidates (internal order)."""
        for start in range(0, self.n_complete, self.chunk):
            yield slice(start, min(start + self.chunk, self.n_complete))

    def partial_chunks(self):
        """Yield ``slice`` objects (into the partial candidates) of bounded size."""
        n = len(self) - self.n_complete
        for start in range(0, n, self.chunk):
            yield slice(start, min(start + self.chunk, n))



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


# --------------------------------------------------------------------------- selection


def _select(pairs_i, pairs_j, stats, b, method, k_best, n_median):
    """Apply the matching rule to scored pairs; return a MatchResult of ``b`` pixels.

    ``pairs_j`` are candidate indices in the caller's order; they break ties,
    as a loop over candidates in that order would (first one wins).
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


# --------------------------------------------------------------------------- LSQ pass


def _missing_corrections(block, rows, cand_chunk):
    """For spectral rows with missing samples: sums of c and c^2 over their missing frames.

    Returns (corr1, corr2), shape (len(rows), chunk), float32, from one small
    product over the frames missing in any of these rows.
    """
    frames = np.flatnonzero(block.missing[rows].any(0))
    ms = block.missing[np.ix_(rows, frames)].astype(np.float32)
    c = cand_chunk[:, frames]
    return ms @ c.T, ms @ (c * c).T


def _lsq_prefilter(block, cand, m, min_samples):
    """Each pixel's ``m`` best candidates (original indices, -1 = none) by the float32 score."""
    b = len(block)
    best = TopM.empty(b, m)
    usable = block.n_valid >= min_samples
    rows_c = block.complete[usable[block.complete]].astype(np.int64)
    rows_p = block.partial[usable[block.partial]].astype(np.int64)
    with np.errstate(divide="ignore"):
        inv_b = 1.0 / block.n_valid
    rows = np.sort(np.concatenate([rows_c, rows_p]))
    t = time.perf_counter()
    for sl in cand.chunks():
        chunk = cand.series[sl]
        g = cand.product(block.m2, sl)                              # float32 BLAS
        t = _tick("products", t)
        if len(rows_p):
            g[rows_p] -= _missing_corrections(block, rows_p, chunk)[1]
            t = _tick("missing corrections", t)
        kernels.lsq_scan(g, rows, LsqTerms(block.sq, inv_b, cand.sq[sl], cand.sq32[sl],
                                           cand.order[sl]), best)
        t = _tick("scan", t)
    t = _tick("scan", t)
    if len(cand) > cand.n_complete:
        rows = np.flatnonzero(usable).astype(np.int64)
        zeros_b, ones_b = np.zeros(b), np.ones(b)
        for sl in cand.partial_chunks():
            n, _, sum_r2 = _masked_sums(block.masked, cand.partial.rows(sl), need_sum=False)
            with np.errstate(invalid="ignore", divide="ignore"):
                score = sum_r2 / n
            score[n < min_samples] = np.inf
            t = _tick("masked products", t)
            width = sl.stop - sl.start
            terms = LsqTerms(zeros_b, ones_b, np.zeros(width), np.zeros(width, np.float32),
                             cand.order[cand.n_complete + sl.start:cand.n_complete + sl.stop])
            kernels.lsq_scan(score, rows, terms, best)
            t = _tick("scan", t)
    return best.indices()


# --------------------------------------------------------------------------- median pass


def _seeds(block, cand, q):
    """Per pixel, the ``q`` candidates (internal indices, shape (b, q)) nearest in mean level."""
    q = min(q, len(cand))
    level = np.nan_to_num(block.mean)
    pos = np.searchsorted(cand.sorted_mean, level)
    start = np.clip(pos - q // 2, 0, len(cand) - q)
    window = start[:, None] + np.arange(q)
    order = np.argsort(np.abs(np.nan_to_num(cand.sorted_mean[window]) - level[:, None]), axis=1,
                       kind="stable")
    return cand.by_mean[np.take_along_axis(window, order, 1)]


def _median_result(keys, k_best):
    """The K best of the kept keys by std (ties: |median|, index), as a MatchResult."""
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


def _chunk(cand, start, stop):
    """Candidates ``start:stop`` (internal order) as a :class:`CandidateChunk` (views)."""
    sl = slice(start, stop)
    return CandidateChunk(cand.series, start, cand.total[sl], cand.total32[sl], cand.sq[sl],
                          cand.sq32[sl], cand.norm[sl], cand.order[sl])


def _median_pass(block, cand, n_median, min_samples, seeds, pair_batch):
    """The median rule over all candidates (pruned as in the module docstring); its keys."""
    t0 = time.perf_counter()
    d = block.n_darks
    keys = MedianKeys.empty(len(block), n_median)
    with np.errstate(divide="ignore"):
        inv_n = 1.0 / block.n_valid
    spectral = SpectralRows(block.values, block.values.astype(np.float64), block.total, block.sq,
                            block.norm, block.n_valid, inv_n)
    rows = np.flatnonzero(block.n_valid >= min_samples).astype(np.int64)
    kernels.offer_seeds(rows, _seeds(block, cand, seeds), spectral, _chunk(cand, 0, len(cand)),
                        keys, min_samples=min_samples, pair_batch=pair_batch)

    partial_rows = np.intersect1d(block.partial, rows)
    corr_row = np.full(len(rows), -1, np.int64)
    corr_row[np.searchsorted(rows, partial_rows)] = np.arange(len(partial_rows))
    err = _ERR_FACTOR * (d + 2) * _EPS32
    t = _tick("exact statistics", t0)
    for sl in cand.chunks():
        chunk = cand.series[sl]
        g = cand.product(block.m2, sl)                                 # float32 BLAS
        t = _tick("products", t)
        if len(partial_rows):
            corr1, corr2 = _missing_corrections(block, partial_rows, chunk)
            g[partial_rows] -= corr2
            corr1 = corr1.astype(np.float64)
            t = _tick("missing corrections", t)
        else:
            corr1 = np.zeros((1, 1))
        kernels.median_scan(g, rows, spectral, _chunk(cand, sl.start, sl.stop), keys,
                            MissingCorrection(corr_row, corr1), err=err,
                            min_samples=min_samples, pair_batch=pair_batch)
        t = _tick("scan", t)

    if len(cand) > cand.n_complete:
        sub = block.masked
        err = _ERR_FACTOR * 3 * (d + 2) * _EPS32
        for sl in cand.partial_chunks():
            part = cand.partial.rows(sl)
            n, sum_r, sum_r2 = _masked_sums(sub, part)
            sums = MaskedSums(n[rows], sum_r[rows], sum_r2[rows], sub.norm[rows], part.norm)
            t = _tick("masked products", t)
            j0 = cand.n_complete + sl.start
            kernels.median_scan_masked(rows, sums, spectral,
                                       _chunk(cand, j0, j0 + sl.stop - sl.start), keys, err=err,
                                       mean_err=err * math.sqrt(d), min_samples=min_samples,
                                       pair_batch=pair_batch)
            t = _tick("masked scan", t)
    return keys


def match_block(spectral, cand: CandidateSet, *, method="median", proxy_count=1,
                median_mode="exact", median_candidates=10, prefilter_count=64,
                min_samples=10, pair_batch=1 << 21, median_seeds=128) -> MatchResult:
    """Find the best proxies of one block of spectral pixels.

    Parameters
    ----------
    spectral : ndarray, shape (b, n_darks)
        Frame-centred dark series of the block's spectral pixels (NaN = missing);
        typ. b = 512.
    cand : CandidateSet
        All candidate (non-spectral, not hot) pixels.
    method : {'median', 'lsq'}
        Matching rule (see module docstring).
    proxy_count : int
        K, proxies kept per spectral pixel, best first (typ. 1; 16 for a
        robust combined background).
    median_mode : {'exact', 'fast'}
        ``exact`` applies the median rule to all candidates (pruned only by
        bounds that cannot drop a competitor); ``fast`` applies it to the
        ``prefilter_count`` best candidates by the LSQ score only.
    median_candidates : int
        k, how many candidates with |residual median| closest to zero go to the
        smallest-std step (typ. 10; at least K are used).
    prefilter_count : int
        M, candidates kept per pixel by the float32 LSQ score and rescored
        exactly (``lsq``, and ``median`` in ``fast`` mode; typ. 64; at least K,
        and at least k for the median rule).
    min_samples : int
        Pairs with fewer common valid dark samples are not considered.
    pair_batch : int
        Bound on residual values held at once by the numpy kernels.
    median_seeds : int
        Candidates nearest in mean level offered first in exact median mode,
        to start the pruning bounds (typ. 128).

    Returns
    -------
    MatchResult
        Indices into ``cand`` (its input order) and statistics, shape (b, K).
    """
    if method not in ("median", "lsq"):
        raise ValueError(f"method must be 'median' or 'lsq', not {method!r}")
    if median_mode not in ("fast", "exact"):
        raise ValueError(f"median_mode must be 'fast' or 'exact', not {median_mode!r}")
    block = _Block(spectral)
    b = len(block)
    if b == 0 or len(cand) == 0:
        return MatchResult.empty(b, proxy_count)
    n_median = max(median_candidates, proxy_count)
    if method == "median" and median_mode == "exact":
        keys = _median_pass(block, cand, n_median, min_samples, max(median_seeds, n_median),
                            pair_batch)
        t = time.perf_counter()
        result = _median_result(keys, proxy_count)
        _tick("select", t)
        return result
    lsq_rule = method == "lsq"
    m = min(max(prefilter_count, proxy_count, 0 if lsq_rule else n_median), len(cand))
    best = _lsq_prefilter(block, cand, m, min_samples)
    t = time.perf_counter()
    pi, col = np.nonzero(best >= 0)
    orig = best[pi, col]
    lsq, median, std, n = kernels.pair_stats(block.values, cand.series, pi, cand.position[orig],
                                             with_median=not lsq_rule, pair_batch=pair_batch)
    lsq = np.where(n >= min_samples, lsq, np.nan)
    result = _select(pi, orig, (lsq, median, std, n), b, method, proxy_count, n_median)
    if lsq_rule:     # medians of the chosen proxies only
        i, k = np.nonzero(result.index >= 0)
        result.median[i, k] = kernels.pair_stats(block.values, cand.series, i,
                                                 cand.position[result.index[i, k]],
                                                 pair_batch=pair_batch)[1]
    _tick("exact statistics", t)
    return result


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


def estimate_work(spectral, cand_count, method="median"):
    """Relative cost of matching each spectral pixel, for balancing ranks by work.

    Every pixel costs its share of the products and scans over all
    candidates; a pixel with missing samples also takes the corrections and
    the general (float64, unscreened) bound, measured at about 1.6x (median)
    and 1.8x (lsq) a complete pixel (``bench/stage1.py``; block-to-block cost
    correlates with the fraction of such pixels at r = 0.95 on the demo data).

    Parameters
    ----------
    spectral : ndarray, shape (n, n_darks)
        Dark series (NaN = missing).
    cand_count : int
        Number of candidates (scales every pixel alike).
    method : str
        Matching rule.

    Returns
    -------
    ndarray of float, shape (n,)
    """
    partial = np.isnan(spectral).any(1)
    extra = 0.8 if method == "lsq" else 0.6
    return (1.0 + extra * partial) * float(cand_count)
