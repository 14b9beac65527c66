"""The block driver of proxy matching: pair sums of a block against all candidates.

:func:`match_block` finds the best proxies of one block of spectral pixels:
float32 matrix products against chunks of the :class:`~.candidates.CandidateSet`,
scanned by the kernels of :mod:`.kernels`, the final choice from exact
statistics (:mod:`.rules`); how and why: see
:mod:`proxy_pixel_pipeline.science.matching`.  Also the work estimate used to
balance ranks, the kernels' thread limit and a per-phase timer for benchmarks.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import numpy as np

from . import kernels
from .candidates import CandidateSet, SpectralBlock, masked_sums
from .rules import MatchResult, median_result, select_best
from .types import (CandidateChunk, LsqTerms, MaskedSums, MedianKeys, MissingCorrection,
                    SpectralRows, TopM)

__all__ = ["estimate_work", "have_numba", "kernel_threads", "lsq_prefilter", "match_block"]

_EPS32 = float(np.finfo(np.float32).eps)
# Rounding of float32 sums of squares, as a multiple of n * eps * (|s| + |c|)^2:
# an upper bound on the BLAS accumulation error, so the exact median pruning
# never drops a pair that could compete.
_ERR_FACTOR = 4.0

def _tick(phases, name, start):
    """Add the time since ``start`` to ``phases[name]`` (when timing: ``phases`` a dict of
    seconds per phase, e.g. a ``defaultdict(float)``); return now."""
    now = time.perf_counter()
    if phases is not None:
        phases[name] += now - start
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


def lsq_prefilter(block, cand, m, min_samples, phases=None):
    """Each pixel's ``m`` best candidates by the float32 LSQ score (the prefilter pass).

    Parameters
    ----------
    block : SpectralBlock
        The spectral pixels.
    cand : CandidateSet
        All candidates.
    m : int
        Candidates kept per pixel (at most ``len(cand)``).
    min_samples : int
        Pixels with fewer valid dark samples, and pairs with fewer common
        ones (partial candidates), get none.

    Returns
    -------
    ndarray of int64, shape (len(block), m)
        Original candidate indices, -1 where none; the order within a row is
        arbitrary.
    """
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
        t = _tick(phases, "products", t)
        if len(rows_p):
            g[rows_p] -= _missing_corrections(block, rows_p, chunk)[1]
            t = _tick(phases, "missing corrections", t)
        kernels.lsq_scan(g, rows, LsqTerms(block.sq, inv_b, cand.sq[sl], cand.sq32[sl],
                                           cand.order[sl]), best)
        t = _tick(phases, "scan", t)
    t = _tick(phases, "scan", t)
    if len(cand) > cand.n_complete:
        rows = np.flatnonzero(usable).astype(np.int64)
        zeros_b, ones_b = np.zeros(b), np.ones(b)
        for sl in cand.partial_chunks():
            n, _, sum_r2 = masked_sums(block.masked, cand.partial.rows(sl), need_sum=False)
            with np.errstate(invalid="ignore", divide="ignore"):
                score = sum_r2 / n
            score[n < min_samples] = np.inf
            t = _tick(phases, "masked products", t)
            width = sl.stop - sl.start
            terms = LsqTerms(zeros_b, ones_b, np.zeros(width), np.zeros(width, np.float32),
                             cand.order[cand.n_complete + sl.start:cand.n_complete + sl.stop])
            kernels.lsq_scan(score, rows, terms, best)
            t = _tick(phases, "scan", t)
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


def _chunk(cand, start, stop):
    """Candidates ``start:stop`` (internal order) as a :class:`CandidateChunk` (views)."""
    sl = slice(start, stop)
    return CandidateChunk(cand.series, start, cand.total[sl], cand.total32[sl], cand.sq[sl],
                          cand.sq32[sl], cand.norm[sl], cand.order[sl])


def _median_pass(block, cand, n_median, min_samples, seeds, pair_batch, phases=None):
    """The median rule over all candidates (pruned as in the package docstring); its keys."""
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
    t = _tick(phases, "exact statistics", t0)
    for sl in cand.chunks():
        chunk = cand.series[sl]
        g = cand.product(block.m2, sl)                                 # float32 BLAS
        t = _tick(phases, "products", t)
        if len(partial_rows):
            corr1, corr2 = _missing_corrections(block, partial_rows, chunk)
            g[partial_rows] -= corr2
            corr1 = corr1.astype(np.float64)
            t = _tick(phases, "missing corrections", t)
        else:
            corr1 = np.zeros((1, 1))
        kernels.median_scan(g, rows, spectral, _chunk(cand, sl.start, sl.stop), keys,
                            MissingCorrection(corr_row, corr1), err=err,
                            min_samples=min_samples, pair_batch=pair_batch)
        t = _tick(phases, "scan", t)

    if len(cand) > cand.n_complete:
        sub = block.masked
        err = _ERR_FACTOR * 3 * (d + 2) * _EPS32
        for sl in cand.partial_chunks():
            part = cand.partial.rows(sl)
            n, sum_r, sum_r2 = masked_sums(sub, part)
            sums = MaskedSums(n[rows], sum_r[rows], sum_r2[rows], sub.norm[rows], part.norm)
            t = _tick(phases, "masked products", t)
            j0 = cand.n_complete + sl.start
            kernels.median_scan_masked(rows, sums, spectral,
                                       _chunk(cand, j0, j0 + sl.stop - sl.start), keys, err=err,
                                       mean_err=err * math.sqrt(d), min_samples=min_samples,
                                       pair_batch=pair_batch)
            t = _tick(phases, "masked scan", t)
    return keys


def match_block(spectral, cand: CandidateSet, *, method="median", proxy_count=1,
                median_mode="exact", median_candidates=10, prefilter_count=64,
                min_samples=10, pair_batch=1 << 21, median_seeds=128, phases=None) -> MatchResult:
    """Find the best proxies of one block of spectral pixels.

    Parameters
    ----------
    spectral : ndarray, shape (b, n_darks)
        Frame-centred dark series of the block's spectral pixels (NaN = missing);
        typ. b = 512.
    cand : CandidateSet
        All candidate (non-spectral, not hot) pixels.
    method : {'median', 'lsq'}
        Matching rule (see the package docstring).
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
    phases : dict, optional
        Adds the wall time of each phase (seconds) to ``phases[name]`` (a
        ``defaultdict(float)``): for benchmarks.

    Returns
    -------
    MatchResult
        Indices into ``cand`` (its input order) and statistics, shape (b, K).
    """
    if method not in ("median", "lsq"):
        raise ValueError(f"method must be 'median' or 'lsq', not {method!r}")
    if median_mode not in ("fast", "exact"):
        raise ValueError(f"median_mode must be 'fast' or 'exact', not {median_mode!r}")
    block = SpectralBlock(spectral)
    b = len(block)
    if b == 0 or len(cand) == 0:
        return MatchResult.empty(b, proxy_count)
    n_median = max(median_candidates, proxy_count)
    if method == "median" and median_mode == "exact":
        keys = _median_pass(block, cand, n_median, min_samples, max(median_seeds, n_median),
                            pair_batch, phases)
        t = time.perf_counter()
        result = median_result(keys, proxy_count)
        _tick(phases, "select", t)
        return result
    lsq_rule = method == "lsq"
    m = min(max(prefilter_count, proxy_count, 0 if lsq_rule else n_median), len(cand))
    best = lsq_prefilter(block, cand, m, min_samples, phases)
    t = time.perf_counter()
    pi, col = np.nonzero(best >= 0)
    orig = best[pi, col]
    lsq, median, std, n = kernels.pair_stats(block.values, cand.series, pi, cand.position[orig],
                                             with_median=not lsq_rule, pair_batch=pair_batch)
    lsq = np.where(n >= min_samples, lsq, np.nan)
    result = select_best(pi, orig, (lsq, median, std, n), b, method, proxy_count, n_median)
    if lsq_rule:     # medians of the chosen proxies only
        i, k = np.nonzero(result.index >= 0)
        result.median[i, k] = kernels.pair_stats(block.values, cand.series, i,
                                                 cand.position[result.index[i, k]],
                                                 pair_batch=pair_batch)[1]
    _tick(phases, "exact statistics", t)
    return result


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
