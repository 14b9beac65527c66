"""Scan kernels of proxy matching, in a numpy and a numba implementation.

:mod:`.matching` turns blocks of spectral pixels and chunks of candidate
pixels into pair sums (float32 matrix products); the kernels here go over
those sums and keep, for every spectral pixel, its best candidates.  Each
kernel exists twice, with the same signature: a numba implementation
(compiled, multi-threaded, fast) and a numpy one (slower, no compiler
needed).  Both make the same decisions from the same floating-point
expressions, so the match tables never depend on which one runs.

Kernels
-------
:func:`pair_stats`
    Exact float64 residual statistics ``(mean r**2, median r, std r, n)`` of
    listed (spectral, candidate) pairs, ``r = s - c`` over the frames where
    both are valid.
:func:`lsq_scan`
    LSQ rule: from a matrix of float32 pair terms ``g``, each pixel's score
    ``(row_sq + (g + col_sq)) * row_inv_n`` against a chunk of candidates;
    keeps each pixel's M smallest scores (ties: smaller candidate index) in
    its :class:`TopM`.
:func:`offer_seeds`
    Median rule: scores listed seed candidates of each pixel exactly and
    keeps each pixel's k best keys ``(|median|, std, index)`` in its
    :class:`MedianKeys`.
:func:`median_scan`
    Median rule over a chunk of *complete* candidates (no missing sample):
    the bound ``|mean| - std <= tau`` (``tau`` the k-th ``|median|`` so far)
    from the pair sums, with float32 rounding margins, prunes pairs; those
    passing get the exact tests and may enter the keys.
:func:`median_scan_masked`
    The same over a chunk of *partial* candidates, from the general masked
    sums (:class:`MaskedSums`).

The numpy :class:`TopM` rows are kept sorted, the numba ones as max-heaps:
read a :class:`TopM` only through :meth:`TopM.indices` once the scans are
done.  :class:`MedianKeys` rows are sorted in both.

Choice of implementation
------------------------
Made once, at import: numba if it can be imported, else numpy.  The
environment variable ``PPP_KERNELS`` forces one (``numpy``: numba is not
even imported; ``numba``: an ImportError if it is missing); ``auto`` or
unset is the default.  :data:`BACKEND` names the choice, the module-level
kernels are that implementation's, and :func:`implementation` returns either
set (for tests and benchmarks).

Arguments are grouped in NamedTuples of arrays (:class:`SpectralRows`,
:class:`CandidateChunk`, :class:`LsqTerms`, :class:`MissingCorrection`,
:class:`MaskedSums`, and the running states :class:`TopM` and
:class:`MedianKeys`); the public functions unpack them for the compiled
code.  What the bounds mean and why they never drop a competitor is
explained in :mod:`.matching`.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["BACKEND", "NO_INDEX", "CandidateChunk", "Kernels", "LsqTerms", "MaskedSums",
           "MedianKeys", "MissingCorrection", "SpectralRows", "TopM", "backend_info",
           "implementation", "limit_threads", "lsq_scan", "median_scan", "median_scan_masked",
           "offer_seeds", "pair_stats", "rank_within"]


def _import_numba():
    """(numba module or None, reason) according to ``PPP_KERNELS`` and what is installed."""
    want = os.environ.get("PPP_KERNELS", "").strip().lower() or "auto"
    if want not in ("auto", "numpy", "numba"):
        raise ImportError(f"PPP_KERNELS must be 'numpy', 'numba' or 'auto', not {want!r}")
    if want == "numpy":
        return None, "PPP_KERNELS=numpy"
    try:
        import numba
    except ImportError as exc:
        if want == "numba":
            raise ImportError(f"PPP_KERNELS=numba but numba cannot be imported: {exc}") from exc
        return None, "numba not installed"
    return numba, f"numba {numba.__version__}"


numba, _REASON = _import_numba()

NO_INDEX = np.iinfo(np.int64).max   # candidate index of an empty slot in TopM / MedianKeys
_TILE = 512       # values per vectorised test in the compiled scans (multiple of 8)
_ROW_GROUP = 16   # rows sharing a tile of candidate series in cache (median scan)
_PAIR_BATCH = 1 << 21


# --------------------------------------------------------------------------- argument groups


class SpectralRows(NamedTuple):
    """A block of spectral pixels and its per-row sums (zero-filled where missing).

    Attributes
    ----------
    values : ndarray of float32, shape (b, n_darks)
        Frame-centred dark series, NaN = missing, C-contiguous.
    values64 : ndarray of float64, shape (b, n_darks)
        The same in float64.
    total, sq, norm : ndarray of float64, shape (b,)
        Sum, sum of squares and its square root over the valid samples.
    n_valid : ndarray of int, shape (b,)
        Valid samples per row.
    inv_n : ndarray of float64, shape (b,)
        ``1 / n_valid`` (inf for an empty row).
    """

    values: np.ndarray
    values64: np.ndarray
    total: np.ndarray
    sq: np.ndarray
    norm: np.ndarray
    n_valid: np.ndarray
    inv_n: np.ndarray


class CandidateChunk(NamedTuple):
    """A contiguous run of candidates (in the candidate set's internal order).

    Attributes
    ----------
    series : ndarray of float32, shape (n_candidates, n_darks)
        Series of *all* candidates (internal order); the chunk is
        ``series[start:start + width]``.
    start : int
        Internal index of the chunk's first candidate.
    total, sq, norm : ndarray of float64, shape (width,)
        Per-candidate sum, sum of squares and its square root (zero-filled).
    total32, sq32 : ndarray of float32, shape (width,)
        ``total`` and ``sq`` in float32.
    index : ndarray of int64, shape (width,)
        Original (input-order) index of each candidate: what the results hold
        and what breaks ties.
    """

    series: np.ndarray
    start: int
    total: np.ndarray
    total32: np.ndarray
    sq: np.ndarray
    sq32: np.ndarray
    norm: np.ndarray
    index: np.ndarray


class LsqTerms(NamedTuple):
    """Terms of the LSQ score ``(row_sq[i] + (g[i, j] + col_sq[j])) * row_inv_n[i]``.

    Attributes
    ----------
    row_sq, row_inv_n : ndarray of float64, shape (b,)
        Per spectral row: sum of squares and ``1 / n`` (or 0 and 1 when ``g``
        is already the score).
    col_sq : ndarray of float64, shape (width,)
        Per candidate: sum of squares (or 0).
    col_sq32 : ndarray of float32, shape (width,)
        ``col_sq`` in float32 (the compiled screen).
    col_index : ndarray of int64, shape (width,)
        Original index of each candidate.
    """

    row_sq: np.ndarray
    row_inv_n: np.ndarray
    col_sq: np.ndarray
    col_sq32: np.ndarray
    col_index: np.ndarray


class MissingCorrection(NamedTuple):
    """Sums of the candidates over each spectral row's missing frames.

    Attributes
    ----------
    row : ndarray of int64, shape (len(rows),)
        For each scanned row (position in ``rows``), its row in ``sums``, or
        -1 when it misses no sample.
    sums : ndarray of float64, shape (n_partial, width)
        ``sum of c over the row's missing frames``, per candidate of the
        chunk (shape (1, 1) of zeros when no row misses a sample).
    """

    row: np.ndarray
    sums: np.ndarray


class MaskedSums(NamedTuple):
    """General masked pair sums of scanned rows against a chunk of partial candidates.

    Attributes
    ----------
    n, sum_r, sum_r2 : ndarray of float32, shape (len(rows), width)
        Common valid samples, sum of residuals and of squared residuals.
    row_norm : ndarray of float64, shape (len(rows),)
        Norm of each scanned row's zero-filled series.
    col_norm : ndarray of float64, shape (width,)
        Norm of each candidate's zero-filled series.
    """

    n: np.ndarray
    sum_r: np.ndarray
    sum_r2: np.ndarray
    row_norm: np.ndarray
    col_norm: np.ndarray


class TopM(NamedTuple):
    """Each row's M best (score, original index) found so far, for :func:`lsq_scan`.

    Empty slots hold ``inf`` and :data:`NO_INDEX`.  The order within a row is
    the implementation's (sorted for numpy, a max-heap for numba).

    Attributes
    ----------
    score : ndarray of float64, shape (b, M)
    index : ndarray of int64, shape (b, M)
    """

    score: np.ndarray
    index: np.ndarray

    @classmethod
    def empty(cls, b, m):
        """No candidate yet for ``b`` rows of ``m`` slots."""
        return cls(np.full((b, m), np.inf), np.full((b, m), NO_INDEX, np.int64))

    def indices(self):
        """Original indices kept, -1 in empty slots (order within a row arbitrary)."""
        return np.where(np.isfinite(self.score), self.index, -1)


class MedianKeys(NamedTuple):
    """Each row's k best keys ``(|median|, std, index)`` so far, sorted, for the median rule.

    ``tau`` (``abs_median[:, -1]``) and ``std[:, -1]`` are the running
    bounds of the scans.  Empty slots: ``inf``, NaN median,
    :data:`NO_INDEX`, 0 samples.

    Attributes
    ----------
    abs_median, median, std : ndarray of float64, shape (b, k)
        ``|median|``, median and population std of the residuals.
    index : ndarray of int64, shape (b, k)
        Original candidate index.
    n : ndarray of int64, shape (b, k)
        Common valid samples.
    """

    abs_median: np.ndarray
    median: np.ndarray
    std: np.ndarray
    index: np.ndarray
    n: np.ndarray

    @classmethod
    def empty(cls, b, k):
        """No key yet for ``b`` rows of ``k`` slots."""
        return cls(np.full((b, k), np.inf), np.full((b, k), np.nan), np.full((b, k), np.inf),
                   np.full((b, k), NO_INDEX, np.int64), np.zeros((b, k), np.int64))


# --------------------------------------------------------------------------- helpers


def rank_within(groups):
    """Position of each element within its run of equal (sorted) group labels.

    Parameters
    ----------
    groups : ndarray of int, shape (n,)
        Labels, equal ones adjacent (e.g. sorted).

    Returns
    -------
    ndarray of int64, shape (n,)
        0 for the first element of each run, 1 for the next, ...
    """
    if len(groups) == 0:
        return np.zeros(0, np.int64)
    start = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    run = np.diff(np.r_[start, len(groups)])
    return np.arange(len(groups)) - np.repeat(start, run)


def backend_info():
    """One line naming the implementation in use and why, e.g. ``'numba 0.60.0'``.

    Returns
    -------
    str
    """
    return _REASON if BACKEND == "numba" else f"numpy ({_REASON})"


@contextmanager
def limit_threads(n_threads):
    """Run the numba kernels on at most ``n_threads`` threads within the block.

    Does nothing with the numpy kernels (their BLAS threads are limited
    separately, e.g. with threadpoolctl).

    Parameters
    ----------
    n_threads : int
    """
    if BACKEND != "numba":
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


# --------------------------------------------------------------------------- numpy kernels


def _np_pair_stats_unbatched(spectral, candidates, pi, pj):
    r = spectral[pi].astype(np.float64) - candidates[pj].astype(np.float64)
    valid = ~np.isnan(r)
    n = valid.sum(1)
    r0 = np.where(valid, r, 0.0)
    total = np.zeros(len(r))
    total_sq = np.zeros(len(r))
    for t in range(r.shape[1]):                          # sequential sums, as compiled
        total += r0[:, t]
        total_sq += r0[:, t] * r0[:, t]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        lsq = total_sq / n
        dev = np.where(valid, r - mean[:, None], 0.0)
        var = np.zeros(len(r))
        for t in range(r.shape[1]):
            var += dev[:, t] * dev[:, t]
        std = np.sqrt(var / n)
    r.sort(axis=1)                                       # NaN sort last
    lo = np.clip((n - 1) // 2, 0, None)[:, None]
    hi = np.clip(n // 2, 0, r.shape[1] - 1)[:, None]
    median = 0.5 * (np.take_along_axis(r, lo, 1) + np.take_along_axis(r, hi, 1))[:, 0]
    bad = n == 0
    lsq[bad] = median[bad] = std[bad] = np.nan
    return lsq, median, std, n


def _np_pair_stats(spectral, candidates, pi, pj, with_median=True, pair_batch=_PAIR_BATCH):
    """Exact residual statistics of listed pairs, in float64.

    Parameters
    ----------
    spectral, candidates : ndarray of float32, shape (n, n_darks), C-contiguous
        Dark series (NaN = missing).
    pi, pj : ndarray of int, shape (p,)
        Row in ``spectral`` and row in ``candidates`` of each pair.
    with_median : bool
        False: skip the medians (returned as NaN).
    pair_batch : int
        Bound on the residual values held at once (numpy).

    Returns
    -------
    lsq, median, std : ndarray of float64, shape (p,)
        Mean squared residual, median and population std of ``r = s - c``
        over the common valid samples; NaN where there is none.
    n : ndarray of int64, shape (p,)
        Common valid samples.
    """
    pi, pj = np.asarray(pi), np.asarray(pj)
    step = max(1, pair_batch // max(1, spectral.shape[1]))
    parts = [_np_pair_stats_unbatched(spectral, candidates, pi[s:s + step], pj[s:s + step])
             for s in range(0, max(len(pi), 1), step)]
    lsq, median, std, n = (np.concatenate([p[f] for p in parts]) for f in range(4))
    if not with_median:
        median[:] = np.nan
    return lsq, median, std, n


def _np_count_pairs_unbatched(s64, series, pi, pj, tau, strict, need):
    r = s64[pi] - series[pj].astype(np.float64)
    t = tau[:, None]
    st = strict[:, None]
    a = np.count_nonzero(np.where(st, r < t, r <= t), axis=1)
    b = np.count_nonzero(np.where(st, r > -t, r >= -t), axis=1)
    return (a >= need) & (b >= need)


def _np_count_pairs(s64, series, pi, pj, tau, strict, need, pair_batch):
    """Pairs with at least ``need`` residuals <= tau and ``need`` >= -tau (< and > if strict).

    Per-pair ``tau``, strictness and ``need``; batches of bounded memory.
    """
    if len(pi) == 0:
        return np.zeros(0, bool)
    tau, strict, need = (np.broadcast_to(x, pi.shape) for x in (tau, strict, need))
    step = max(1, pair_batch // max(1, series.shape[1]))
    return np.concatenate([
        _np_count_pairs_unbatched(s64, series, pi[s:s + step], pj[s:s + step], tau[s:s + step],
                                  strict[s:s + step], need[s:s + step])
        for s in range(0, len(pi), step)])


def _np_heap_push(heap_val, heap_idx, rows, vals, idx):
    """Merge listed (row, value, index) entries into each row's M best by (value, index)."""
    b, m = heap_val.shape
    all_rows = np.concatenate([np.repeat(np.arange(b), m), rows])
    all_val = np.concatenate([heap_val.ravel(), vals])
    all_idx = np.concatenate([heap_idx.ravel(), idx])
    order = np.lexsort((all_idx, all_val, all_rows))
    rank = rank_within(all_rows[order])
    keep = order[rank < m]
    heap_val.reshape(-1)[:] = all_val[keep]
    heap_idx.reshape(-1)[:] = all_idx[keep]


def _np_lsq_scan(g, rows, terms, best):
    """Keep each row's M smallest LSQ scores against a chunk of candidates.

    The score of row ``i`` and column ``j`` is
    ``(terms.row_sq[i] + (g[i, j] + terms.col_sq[j])) * terms.row_inv_n[i]``
    in float64 (the mean squared residual when ``g = -2 S @ C.T``); a score
    enters ``best`` when it beats the row's worst kept one by (score,
    original index).

    Parameters
    ----------
    g : ndarray of float32, shape (b, width)
        Pair terms of the chunk (C-contiguous).
    rows : ndarray of int64
        Rows of ``g`` to scan.
    terms : LsqTerms
    best : TopM
        Updated in place.
    """
    if len(rows) == 0:
        return
    heap_val, heap_idx = best
    a, inv_b, c_sq, orig = terms.row_sq, terms.row_inv_n, terms.col_sq, terms.col_index
    score = (a[rows, None] + (g[rows].astype(np.float64) + c_sq[None, :])) * inv_b[rows, None]
    hit = score <= heap_val[rows, -1][:, None]          # numpy heaps are sorted rows
    i, j = np.nonzero(hit)
    if len(i):
        _np_heap_push(heap_val, heap_idx, rows[i], score[i, j], orig[j])


def _np_bound(mean, var_up, var_low, tau, sig2):
    """(keep, strict) of the median pruning; see ``_may_enter`` (its numba twin)."""
    d = np.abs(mean) - tau
    strict = var_low > sig2
    keep = ((d <= 0) | (d * d <= var_up)) & ~(strict & (tau <= 0))
    return keep, strict


def _np_offer(pi, pj, spectral, chunk, keys, min_samples, pair_batch):
    """Score pairs (row, internal candidate index) exactly and merge them into ``keys``.

    Pairs already among their row's keys (seeds) are skipped, as the numba
    kernels skip them.
    """
    if len(pi) == 0:
        return
    orig = chunk.index[pj - chunk.start]
    new = ~(keys.index[pi] == orig[:, None]).any(1)
    pi, pj, orig = pi[new], pj[new], orig[new]
    if len(pi) == 0:
        return
    _, median, std, n = _np_pair_stats(spectral.values, chunk.series, pi, pj, True, pair_batch)
    ok = n >= min_samples
    pi, median, std, n, orig = pi[ok], median[ok], std[ok], n[ok], orig[ok]
    b, k = keys.index.shape
    rows = np.concatenate([np.repeat(np.arange(b), k), pi])
    merged = [np.concatenate([old.ravel(), new])
              for old, new in zip(keys, (np.abs(median), median, std, orig, n))]
    order = np.lexsort((merged[3], merged[2], merged[0], rows))
    keep = order[rank_within(rows[order]) < k]
    for old, new in zip(keys, merged):
        old[...] = new[keep].reshape(b, k)


def _np_offer_seeds(rows, cols, spectral, chunk, keys, *, min_samples, pair_batch=_PAIR_BATCH):
    """Score given candidates of each row exactly and keep the k best in ``keys``.

    Parameters
    ----------
    rows : ndarray of int64
        Rows of ``spectral`` to seed.
    cols : ndarray of int64, shape (b, q)
        Per row of ``spectral``, ``q`` distinct internal candidate indices.
    spectral : SpectralRows
    chunk : CandidateChunk
        All candidates (``start`` 0, ``index`` the full internal-to-original map).
    keys : MedianKeys
        Updated in place.
    min_samples : int
        Pairs with fewer common valid samples are skipped.
    pair_batch : int
        Bound on residual values held at once (numpy).
    """
    pi = np.repeat(rows, cols.shape[1])
    pj = cols[rows].ravel()
    _np_offer(pi, pj, spectral, chunk, keys, min_samples, pair_batch)


def _np_median_scan(g, rows, spectral, chunk, keys, correction, *, err, min_samples,
                    pair_batch=_PAIR_BATCH):
    """The median rule against a chunk of complete candidates, pruned by exact bounds.

    Each pair's residual mean and sum of squares come from the row and
    column sums and ``g`` (``sum r^2 = sq[i] + g[i, j] + sq[j]``, ``sum r =
    total[i] - total[j] (+ correction)``); a pair whose bound
    ``|mean| - std <= tau`` (with rounding margin ``err``) fails, or whose
    std surely exceeds the k-th when ``tau`` is 0, is skipped; the others
    get the exact counting test, std and median and may enter ``keys``.

    Parameters
    ----------
    g : ndarray of float32, shape (b, width)
        ``-2 S @ C.T`` of the chunk, less the sums of ``c^2`` over each
        row's missing frames.
    rows : ndarray of int64
        Rows to scan (sorted).
    spectral : SpectralRows
    chunk : CandidateChunk
    keys : MedianKeys
        Updated in place.
    correction : MissingCorrection
        For rows with missing samples.
    err : float
        Relative rounding margin of the float32 sums of squares.
    min_samples : int
        Pairs with fewer common valid samples are skipped.
    pair_batch : int
        Bound on residual values held at once (numpy).
    """
    corr_row, corr1 = correction
    s_total, s_sq, s_norm, inv_n = spectral.total, spectral.sq, spectral.norm, spectral.inv_n
    c_total, c_sq, c_norm = chunk.total, chunk.sq, chunk.norm
    need = (spectral.n_valid + 1) // 2
    tau = keys.abs_median[:, -1].copy()      # the bounds at the start of the scan
    sig2 = keys.std[:, -1] ** 2
    out_i, out_j = [], []
    step = max(1, pair_batch // max(1, g.shape[1]))
    for r0 in range(0, len(rows), step):
        sel = np.arange(r0, min(r0 + step, len(rows)))
        rr = rows[sel]
        num = s_total[rr, None] - c_total[None, :]
        has = corr_row[sel] >= 0
        if has.any():
            num[has] = num[has] + corr1[corr_row[sel][has]]
        mean = num * inv_n[rr, None]
        sum_r2 = (s_sq[rr, None] + g[rr].astype(np.float64)) + c_sq[None, :]
        e = s_norm[rr, None] + c_norm[None, :]
        ee = err * (e * e)
        var_up = (sum_r2 + ee) * inv_n[rr, None] - mean * mean
        var_low = (sum_r2 - ee) * inv_n[rr, None] - mean * mean
        keep, strict = _np_bound(mean, var_up, var_low, tau[rr, None], sig2[rr, None])
        i, j = np.nonzero(keep)
        i = rr[i]
        ok = _np_count_pairs(spectral.values64, chunk.series, i, j + chunk.start, tau[i],
                             strict[keep], need[i], pair_batch)
        out_i.append(i[ok])
        out_j.append(j[ok] + chunk.start)
    if out_i:
        _np_offer(np.concatenate(out_i), np.concatenate(out_j), spectral, chunk, keys,
                  min_samples, pair_batch)


def _np_median_scan_masked(rows, sums, spectral, chunk, keys, *, err, mean_err, min_samples,
                           pair_batch=_PAIR_BATCH):
    """The median rule against a chunk of partial candidates, from the masked sums.

    Parameters
    ----------
    rows : ndarray of int64
        Rows of ``spectral`` scanned; row ``r`` of ``sums`` is ``rows[r]``.
    sums : MaskedSums
    spectral : SpectralRows
    chunk : CandidateChunk
    keys : MedianKeys
        Updated in place.
    err : float
        Relative rounding margin of the float32 sums of squares.
    mean_err : float
        Rounding margin of the float32 residual sums, times ``norm / n``.
    min_samples : int
        Pairs with fewer common valid samples are skipped.
    pair_batch : int
        Bound on residual values held at once (numpy).
    """
    if len(rows) == 0:
        return
    n, sum_r, sum_r2 = (x.astype(np.float64) for x in (sums.n, sums.sum_r, sums.sum_r2))
    e = sums.row_norm[:, None] + sums.col_norm[None, :]
    ee = err * (e * e)
    tau = keys.abs_median[:, -1].copy()      # the bounds at the start of the scan
    sig2 = keys.std[:, -1] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sum_r / n
        margin = mean_err * e / n
        low = np.maximum(np.abs(mean) - margin, 0.0)
        high = np.abs(mean) + margin
        var_up = (sum_r2 + ee) / n - low * low
        var_low = (sum_r2 - ee) / n - high * high
    keep, strict = _np_bound(low, var_up, var_low, tau[rows, None], sig2[rows, None])
    keep &= n >= min_samples
    i, j = np.nonzero(keep)
    pair_need = ((n[i, j] + 1) // 2).astype(np.int64)
    strict = strict[i, j]
    i = rows[i]
    j = j + chunk.start
    passed = _np_count_pairs(spectral.values64, chunk.series, i, j, tau[i], strict, pair_need,
                             pair_batch)
    _np_offer(i[passed], j[passed], spectral, chunk, keys, min_samples, pair_batch)


# --------------------------------------------------------------------------- numba kernels
#
# The compiled twins of the numpy kernels above (same decisions from the same
# floating-point expressions).  Their long positional argument lists are what
# numba compiles; only the public wrappers further down call them.

if numba is not None:
    _jit = numba.njit(cache=True, nogil=True, parallel=True)
    _jit1 = numba.njit(cache=True, nogil=True)

    @numba.njit(cache=True, nogil=True, inline="always")
    def _may_enter(mean_low, mean_high, sum_r2, ee, inv_n, tau, sig2):
        # The median rule's pruning bound (the numba twin of _np_bound): can a
        # candidate whose |residual mean| lies in [mean_low, mean_high] and whose
        # n * (residual variance + mean^2) is sum_r2 +- ee still enter a pixel's
        # k best, given the current k-th (|median|, std) = (tau, sqrt(sig2))?
        # Bitwise operators: no branches, so the callers' loops vectorise.
        var_up = (sum_r2 + ee) * inv_n - mean_low * mean_low
        var_low = (sum_r2 - ee) * inv_n - mean_high * mean_high
        d = mean_low - tau
        return ((d <= 0) | (d * d <= var_up)) & ~((var_low > sig2) & (tau <= 0))

    @_jit1
    def _moments(s, c):
        # (n, sum r, sum r^2, population std) of the residual s - c, float64,
        # sequential sums (the numpy kernels add in the same order).
        n = 0
        total = 0.0
        total_sq = 0.0
        for t in range(len(s)):
            x = np.float64(s[t]) - np.float64(c[t])
            if x == x:
                n += 1
            else:
                x = 0.0
            total += x
            total_sq += x * x
        if n == 0:
            return 0, 0.0, 0.0, np.nan
        mean = total / n
        var = 0.0
        for t in range(len(s)):
            x = np.float64(s[t]) - np.float64(c[t])
            dev = x - mean if x == x else 0.0
            var += dev * dev
        return n, total, total_sq, math.sqrt(var / n)

    @_jit1
    def _select_kth(v, lo, hi, kth):
        # Quickselect: move the kth smallest of v[lo:hi+1] to v[kth], smaller before.
        while hi > lo:
            mid = (lo + hi) // 2
            # median of three as pivot
            if v[mid] < v[lo]:
                v[mid], v[lo] = v[lo], v[mid]
            if v[hi] < v[lo]:
                v[hi], v[lo] = v[lo], v[hi]
            if v[hi] < v[mid]:
                v[hi], v[mid] = v[mid], v[hi]
            pivot = v[mid]
            i = lo
            j = hi
            while i <= j:
                while v[i] < pivot:
                    i += 1
                while v[j] > pivot:
                    j -= 1
                if i <= j:
                    v[i], v[j] = v[j], v[i]
                    i += 1
                    j -= 1
            if kth <= j:
                hi = j
            elif kth >= i:
                lo = i
            else:
                return

    @_jit1
    def _median_of(s, c, buf):
        # Median of the valid residuals s - c (numpy's: mean of the two middle
        # values for an even count), by quickselect.
        n = 0
        for t in range(len(s)):
            x = np.float64(s[t]) - np.float64(c[t])
            if x == x:
                buf[n] = x
                n += 1
        if n == 0:
            return np.nan
        h = n // 2
        _select_kth(buf, 0, n - 1, h)
        upper = buf[h]
        if n % 2:
            return upper
        lower = buf[0]
        for t in range(1, h):
            if buf[t] > lower:
                lower = buf[t]
        return 0.5 * (lower + upper)

    @_jit1
    def _window_stat(buf, m, wmin, wmax, below, above, cb, kk, fallback):
        # The kk-th smallest residual (0-based) from the window pass of _median_near.
        if kk < cb:
            return below if kk == cb - 1 else fallback
        if kk >= cb + m:
            return above if kk == cb + m else fallback
        if wmin == wmax:
            return wmin
        _select_kth(buf, 0, m - 1, kk - cb)
        return buf[kk - cb]

    @_jit1
    def _median_near(s, c, tau, buf):
        # Exact median of the valid residuals s - c (s float64), fast when the
        # middle values lie in [-tau, tau]: one branch-free pass counts the
        # values below and above that window, keeps the nearest outside ones
        # and collects the window (often all equal: integer data, tau = 0).
        n = 0
        cb = 0
        m = 0
        below = -np.inf
        above = np.inf
        wmin = np.inf
        wmax = -np.inf
        for t in range(len(c)):
            x = s[t] - np.float64(c[t])
            valid = x == x
            lo = x < -tau
            hi = x > tau
            inside = valid and not lo and not hi
            n += valid
            cb += lo
            below = max(below, x) if lo else below
            above = min(above, x) if hi else above
            buf[m] = x
            m += inside
            wmin = min(wmin, x) if inside else wmin
            wmax = max(wmax, x) if inside else wmax
        if n == 0:
            return np.nan
        k1 = (n - 1) // 2
        k2 = n // 2
        v1 = _window_stat(buf, m, wmin, wmax, below, above, cb, k1, np.nan)
        if v1 != v1:
            return np.nan
        if k2 == k1:
            return v1
        if cb <= k1 < cb + m and wmin != wmax:
            # buf was partitioned around k1 - cb: the next value is the minimum above it
            v2 = above if k2 == cb + m else np.inf
            if k2 < cb + m:
                for q in range(k1 - cb + 1, m):
                    v2 = min(v2, buf[q])
        else:
            v2 = _window_stat(buf, m, wmin, wmax, below, above, cb, k2, np.nan)
            if v2 != v2:
                return np.nan
        return 0.5 * (v1 + v2)

    @_jit
    def _nb_pair_stats(spectral, candidates, pi, pj, with_median, lsq, median, std, n_out):
        n_pairs = len(pi)
        n_tasks = (n_pairs + 255) // 256
        for task in numba.prange(n_tasks):
            buf = np.empty(spectral.shape[1], np.float64)
            for p in range(task * 256, min(n_pairs, task * 256 + 256)):
                s = spectral[pi[p]]
                c = candidates[pj[p]]
                n, total, total_sq, sd = _moments(s, c)
                n_out[p] = n
                if n == 0:
                    lsq[p] = np.nan
                    median[p] = np.nan
                    std[p] = np.nan
                    continue
                lsq[p] = total_sq / n
                std[p] = sd
                median[p] = _median_of(s, c, buf) if with_median else np.nan

    @_jit1
    def _count_one(s, c, tau, strict):
        # (#r <= tau, #r >= -tau, #valid) of r = s - c (< and > if strict); s float64.
        a = 0
        b = 0
        n = 0
        if strict:
            for t in range(len(c)):
                x = s[t] - np.float64(c[t])
                a += x < tau
                b += x > -tau
                n += x == x
        else:
            for t in range(len(c)):
                x = s[t] - np.float64(c[t])
                a += x <= tau
                b += x >= -tau
                n += x == x
        return a, b, n

    @_jit1
    def _sift_down(val, idx, pos, m):
        # Max-heap by (value, index) on the first m entries.
        while True:
            left = 2 * pos + 1
            if left >= m:
                return
            big = left
            right = left + 1
            if right < m and (val[right] > val[left]
                              or (val[right] == val[left] and idx[right] > idx[left])):
                big = right
            if val[big] > val[pos] or (val[big] == val[pos] and idx[big] > idx[pos]):
                val[pos], val[big] = val[big], val[pos]
                idx[pos], idx[big] = idx[big], idx[pos]
                pos = big
            else:
                return

    @_jit1
    def _heap_offer(val, idx, v, j):
        if v < val[0] or (v == val[0] and j < idx[0]):
            val[0] = v
            idx[0] = j
            _sift_down(val, idx, 0, len(val))

    @_jit
    def _nb_lsq_scan(g, rows, a, inv_b, c_sq, c_sq32, c_sq_max, orig, heap_val, heap_idx):
        # Each row keeps its M best (score, original index) in a max-heap whose
        # root is the running threshold.  A vectorised float32 test with a safe
        # margin flags a tile of values; flagged values are decided in float64.
        width = g.shape[1]
        eps = 8.0 * 1.1920928955078125e-07
        for r in numba.prange(len(rows)):
            i = rows[r]
            gi = g[i]
            ai = a[i]
            bi = inv_b[i]
            hv = heap_val[i]
            hi = heap_idx[i]
            flags = np.zeros(_TILE, np.uint8)
            words = flags.view(np.uint64)
            for start in range(0, width, _TILE):
                w = min(_TILE, width - start)
                worst = hv[0]
                if worst < np.inf:
                    t64 = worst / bi - ai
                    thr = np.float32(t64 + eps * (abs(t64) + abs(ai) + c_sq_max))
                else:
                    thr = np.float32(np.inf)
                gt = gi[start:start + w]               # slices: the loop vectorises
                ct = c_sq32[start:start + w]
                for j in range(w):
                    flags[j] = (gt[j] + ct[j]) <= thr
                for j in range(w, _TILE):
                    flags[j] = 0
                for q in range(_TILE // 8):
                    if words[q] == 0:
                        continue
                    for jj in range(q * 8, q * 8 + 8):
                        if flags[jj]:
                            j = start + jj
                            v = (ai + (np.float64(gi[j]) + c_sq[j])) * bi
                            if v < hv[0] or (v == hv[0] and orig[j] < hi[0]):
                                _heap_offer(hv, hi, v, orig[j])

    @_jit1
    def _key_insert(km, ks, kd, ki, kn, med, std, idx, n):
        # Insert (|med|, std, idx) into a row's sorted k best keys if it beats the last.
        am = abs(med)
        k = len(km)
        last = k - 1
        if not (am < km[last] or (am == km[last] and (std < kd[last] or (
                std == kd[last] and idx < ki[last])))):
            return
        for q in range(k):                       # already kept (a seed)
            if ki[q] == idx:
                return
        pos = last
        while pos > 0 and (am < km[pos - 1] or (am == km[pos - 1] and (
                std < kd[pos - 1] or (std == kd[pos - 1] and idx < ki[pos - 1])))):
            km[pos] = km[pos - 1]
            ks[pos] = ks[pos - 1]
            kd[pos] = kd[pos - 1]
            ki[pos] = ki[pos - 1]
            kn[pos] = kn[pos - 1]
            pos -= 1
        km[pos] = am
        ks[pos] = med
        kd[pos] = std
        ki[pos] = idx
        kn[pos] = n

    @_jit1
    def _offer_median(si, s32i, c, min_samples, idx, buf, km, ks, kd, ki, kn):
        # Does (|median|, std, idx) beat the row's k-th key?  The counting
        # test first (most pairs fail it); then the exact std, which says
        # whether |median| must be below tau strictly (impossible when tau is
        # 0); the median only for a contender.
        k = len(km)
        ti = km[k - 1]
        a, b, n = _count_one(si, c, ti, False)
        need = (n + 1) // 2
        if a < need or b < need or n < min_samples:
            return
        n, total, total_sq, std = _moments(s32i, c)
        if not (std < kd[k - 1] or (std == kd[k - 1] and idx < ki[k - 1])):
            if ti <= 0:
                return
            a, b, n = _count_one(si, c, ti, True)
            if a < need or b < need:
                return
        for q in range(k):                       # already kept (a seed)
            if ki[q] == idx:
                return
        med = _median_near(si, c, ti if ti < np.inf else np.inf, buf)
        if med != med:
            med = _median_of(s32i, c, buf)
        _key_insert(km, ks, kd, ki, kn, med, std, idx, n)

    @_jit
    def _nb_median_scan(g, rows, corr_row, corr1, s_total, s_sq, s_norm, inv_n, s32, s64,
                        c_total, c_total32, c_sq, c_sq32, c_norm, tile_total, tile_sq,
                        tile_norm, series, orig, j0, err, min_samples, key_med, key_sgn, key_std,
                        key_idx, key_n):
        # Complete candidates.  Per pair the bound |mean| - lam * std <= tau
        # from the sums (with the float32 rounding margin err); for pairs
        # passing it the exact tests of _offer_median, which update the row's
        # k best keys (|median|, std, index) at once so that tau (k-th
        # |median|) and the k-th std tighten as the scan goes.  A pair whose
        # std is surely above the k-th std must beat tau strictly, which is
        # impossible when tau is 0 (the usual case once a few candidates are
        # known, the data being integers): then a pair needs var <= sig2 and
        # mean^2 <= L var, so its sum of squares is at most
        # n (1 + L) sig2 (+ margins), a vectorised float32 screen like the LSQ
        # scan's.  Tiles are the outer loop within a group of rows, so that a
        # tile's series stay in cache for the exact tests.
        width = g.shape[1]
        k = key_med.shape[1]
        eps32 = 1.1920928955078125e-07
        n_groups = (len(rows) + _ROW_GROUP - 1) // _ROW_GROUP
        for grp in numba.prange(n_groups):
            flags = np.zeros(_TILE, np.uint8)
            words = flags.view(np.uint64)
            buf = np.empty(s32.shape[1], np.float64)
            corr = np.zeros(_TILE)
            for tile, start in enumerate(range(0, width, _TILE)):
                w = min(_TILE, width - start)
                tt = c_total[start:start + w]
                qt = c_sq[start:start + w]
                q32 = c_sq32[start:start + w]
                nt = c_norm[start:start + w]
                for r in range(grp * _ROW_GROUP, min(len(rows), grp * _ROW_GROUP + _ROW_GROUP)):
                    i = rows[r]
                    gi = g[i][start:start + w]         # 1-D slices: the loops vectorise
                    st = s_total[i]
                    ss = s_sq[i]
                    sn = s_norm[i]
                    ni = inv_n[i]
                    km = key_med[i]
                    kd = key_std[i]
                    ti = km[k - 1]
                    si2 = kd[k - 1] * kd[k - 1]
                    cr = corr_row[r]
                    if cr >= 0:
                        for j in range(w):
                            corr[j] = corr1[cr, start + j]
                    else:
                        corr[:] = 0.0
                    if ti <= 0 and si2 < np.inf and cr < 0:
                        # float32 screen implied by the exact conditions (var_low
                        # <= sig2 and mean^2 <= var_up) with explicit margins for
                        # float32 rounding: mu on the mean, d1 on n * var.
                        e = sn + tile_norm[tile]
                        ee_n = err * e * e * ni
                        mu = 4.0 * eps32 * (abs(st) + tile_total[tile]) * ni
                        d1 = 10.0 * eps32 * (ss + tile_sq[tile]) * ni
                        c1 = np.float32((si2 + ee_n + d1) * (1.0 + 8.0 * eps32) + 1e-30)
                        c2 = np.float32(ee_n + d1)
                        mu32 = np.float32(mu)
                        l1 = np.float32(2.0 * (1.0 - 8.0 * eps32))
                        l2 = np.float32(1.0 + 8.0 * eps32)
                        st32 = np.float32(st)
                        ss32 = np.float32(ss)
                        ni32 = np.float32(ni)
                        t32 = c_total32[start:start + w]
                        for j in range(w):
                            m32 = abs((st32 - t32[j]) * ni32)
                            x = ((ss32 + gi[j]) + q32[j]) * ni32
                            a = m32 + mu32
                            b = max(m32 - mu32, np.float32(0.0))
                            flags[j] = (x <= c1 + a * a) & (l1 * b * b <= l2 * (x + c2))
                        exact_bound = True
                    else:
                        for j in range(w):
                            mean = abs(((st - tt[j]) + corr[j]) * ni)
                            e = sn + nt[j]
                            flags[j] = _may_enter(mean, mean, (ss + np.float64(gi[j])) + qt[j],
                                                  err * (e * e), ni, ti, si2)
                        exact_bound = False
                    for j in range(w, _TILE):
                        flags[j] = 0
                    for q in range(_TILE // 8):
                        if words[q] == 0:
                            continue
                        for j in range(q * 8, q * 8 + 8):
                            if not flags[j]:
                                continue
                            if exact_bound:    # screened: now the bound itself
                                ti = km[k - 1]
                                si2 = kd[k - 1] * kd[k - 1]
                                mean = abs(((st - tt[j]) + corr[j]) * ni)
                                e = sn + nt[j]
                                if not _may_enter(mean, mean, (ss + np.float64(gi[j])) + qt[j],
                                                  err * (e * e), ni, ti, si2):
                                    continue
                            _offer_median(s64[i], s32[i], series[start + j + j0], min_samples,
                                          orig[start + j], buf, km, key_sgn[i], kd,
                                          key_idx[i], key_n[i])

    @_jit
    def _nb_offer_seeds(rows, cols, s32, s64, series, orig, min_samples,
                        key_med, key_sgn, key_std, key_idx, key_n):
        # Offer each row's seed candidates (internal indices, nearest first).
        for r in numba.prange(len(rows)):
            i = rows[r]
            buf = np.empty(s32.shape[1], np.float64)
            for q in range(cols.shape[1]):
                j = cols[i, q]
                _offer_median(s64[i], s32[i], series[j], min_samples, orig[j], buf,
                              key_med[i], key_sgn[i], key_std[i], key_idx[i], key_n[i])

    @_jit
    def _nb_median_scan_masked(rows, n_m, sum_r, sum_r2, s_norm, c_norm, err, mean_err, s32, s64,
                               series, orig, j0, min_samples,
                               key_med, key_sgn, key_std, key_idx, key_n):
        # Partial candidates: the same with the general masked sums (float32
        # matrices) and their rounding margins.
        width = n_m.shape[1]
        k = key_med.shape[1]
        for r in numba.prange(len(rows)):
            i = rows[r]
            km = key_med[i]
            kd = key_std[i]
            buf = np.empty(s32.shape[1], np.float64)
            for j in range(width):
                n = np.float64(n_m[r, j])
                if n < min_samples:
                    continue
                ti = km[k - 1]
                si2 = kd[k - 1] * kd[k - 1]
                e = s_norm[r] + c_norm[j]
                mean = abs(np.float64(sum_r[r, j]) / n)
                me = mean_err * e / n     # rounding margin of the float32 masked sums
                if _may_enter(max(mean - me, 0.0), mean + me, np.float64(sum_r2[r, j]),
                              err * (e * e), 1.0 / n, ti, si2):
                    _offer_median(s64[i], s32[i], series[j + j0], min_samples, orig[j], buf, km,
                                  key_sgn[i], kd, key_idx[i], key_n[i])




# --------------------------------------------------------------------------- numba wrappers
#
# Same signatures as the numpy kernels: unpack the argument groups for the
# compiled code (which cannot take arbitrary Python objects).


def _numba_pair_stats(spectral, candidates, pi, pj, with_median=True, pair_batch=_PAIR_BATCH):
    # numba pair_stats (``pair_batch`` unused: no temporaries); documented on the numpy twin
    n = len(pi)
    if n == 0:
        return _np_pair_stats(spectral, candidates, pi, pj, with_median, pair_batch)
    lsq, median, std = np.empty(n), np.empty(n), np.empty(n)
    count = np.empty(n, np.int64)
    _nb_pair_stats(spectral, candidates, np.ascontiguousarray(pi, np.int64),
                   np.ascontiguousarray(pj, np.int64), with_median, lsq, median, std, count)
    return lsq, median, std, count


def _numba_lsq_scan(g, rows, terms, best):
    # numba lsq_scan; documented on the numpy twin
    if len(rows) == 0:
        return
    c_max = float(np.max(terms.col_sq)) if len(terms.col_sq) else 0.0
    _nb_lsq_scan(g, rows, terms.row_sq, terms.row_inv_n, terms.col_sq, terms.col_sq32, c_max,
                 terms.col_index, best.score, best.index)


def _numba_offer_seeds(rows, cols, spectral, chunk, keys, *, min_samples, pair_batch=_PAIR_BATCH):
    # numba offer_seeds; documented on the numpy twin
    _nb_offer_seeds(rows, cols, spectral.values, spectral.values64, chunk.series, chunk.index,
                    min_samples, *keys)


def _numba_median_scan(g, rows, spectral, chunk, keys, correction, *, err, min_samples,
                       pair_batch=_PAIR_BATCH):
    # numba median_scan; documented on the numpy twin
    width = g.shape[1]
    if width == 0:
        return
    tiles = np.arange(0, width, _TILE)
    _nb_median_scan(g, rows, correction.row, correction.sums, spectral.total, spectral.sq,
                    spectral.norm, spectral.inv_n, spectral.values, spectral.values64,
                    chunk.total, chunk.total32, chunk.sq, chunk.sq32, chunk.norm,
                    np.maximum.reduceat(np.abs(chunk.total), tiles),
                    np.maximum.reduceat(chunk.sq, tiles),
                    np.maximum.reduceat(chunk.norm, tiles), chunk.series, chunk.index,
                    chunk.start, err, min_samples, *keys)


def _numba_median_scan_masked(rows, sums, spectral, chunk, keys, *, err, mean_err, min_samples,
                              pair_batch=_PAIR_BATCH):
    # numba median_scan_masked; documented on the numpy twin
    _nb_median_scan_masked(rows, sums.n, sums.sum_r, sums.sum_r2, sums.row_norm, sums.col_norm,
                           err, mean_err, spectral.values, spectral.values64, chunk.series,
                           chunk.index, chunk.start, min_samples, *keys)


# --------------------------------------------------------------------------- public interface


class Kernels(NamedTuple):
    """One implementation of every kernel (see :func:`implementation`)."""

    name: str
    pair_stats: Callable
    lsq_scan: Callable
    offer_seeds: Callable
    median_scan: Callable
    median_scan_masked: Callable


_NUMPY = Kernels("numpy", _np_pair_stats, _np_lsq_scan, _np_offer_seeds, _np_median_scan,
                 _np_median_scan_masked)
_NUMBA = None if numba is None else Kernels(
    "numba", _numba_pair_stats, _numba_lsq_scan, _numba_offer_seeds, _numba_median_scan,
    _numba_median_scan_masked)


def implementation(name):
    """The kernels of one implementation.

    Parameters
    ----------
    name : {'numpy', 'numba'}

    Returns
    -------
    Kernels
        Functions with the signatures of the module-level kernels.

    Raises
    ------
    ValueError
        Unknown name, or 'numba' when numba was not imported
        (not installed, or ``PPP_KERNELS=numpy``).
    """
    if name == "numpy":
        return _NUMPY
    if name == "numba" and _NUMBA is not None:
        return _NUMBA
    if name == "numba":
        raise ValueError(f"the numba kernels are not available ({_REASON})")
    raise ValueError(f"kernel implementation must be 'numpy' or 'numba', not {name!r}")


_ACTIVE = _NUMBA if _NUMBA is not None else _NUMPY
BACKEND = _ACTIVE.name    # 'numba' or 'numpy': the implementation of the kernels below

if _NUMBA is not None:    # one documentation for both implementations
    for _nb_fn, _np_fn in zip(_NUMBA[1:], _NUMPY[1:]):
        _nb_fn.__doc__ = _np_fn.__doc__

pair_stats = _ACTIVE.pair_stats
lsq_scan = _ACTIVE.lsq_scan
offer_seeds = _ACTIVE.offer_seeds
median_scan = _ACTIVE.median_scan
median_scan_masked = _ACTIVE.median_scan_masked
