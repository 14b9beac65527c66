"""The numpy implementation of the matching kernels (no compiler needed).

Vectorised over pairs in batches of bounded memory (``pair_batch`` residual
values at once).  Each public kernel has a compiled twin with the same
signature in :mod:`.kernels_numba`; both make the same decisions from the
same floating-point expressions, so the match tables never depend on which
one runs.  The public interface, and the choice between the two, is
:mod:`.kernels`.  :class:`~.types.TopM` rows are kept sorted here.
"""

from __future__ import annotations

import numpy as np

from .types import PAIR_BATCH

__all__ = ["lsq_scan", "median_scan", "median_scan_masked", "offer_seeds", "pair_stats",
           "rank_within"]


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




def _pair_stats_unbatched(spectral, candidates, pi, pj):
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


def pair_stats(spectral, candidates, pi, pj, with_median=True, pair_batch=PAIR_BATCH):
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
    parts = [_pair_stats_unbatched(spectral, candidates, pi[s:s + step], pj[s:s + step])
             for s in range(0, max(len(pi), 1), step)]
    lsq, median, std, n = (np.concatenate([p[f] for p in parts]) for f in range(4))
    if not with_median:
        median[:] = np.nan
    return lsq, median, std, n


def _count_pairs_unbatched(s64, series, pi, pj, tau, strict, need):
    r = s64[pi] - series[pj].astype(np.float64)
    t = tau[:, None]
    st = strict[:, None]
    a = np.count_nonzero(np.where(st, r < t, r <= t), axis=1)
    b = np.count_nonzero(np.where(st, r > -t, r >= -t), axis=1)
    return (a >= need) & (b >= need)


def _count_pairs(s64, series, pi, pj, tau, strict, need, pair_batch):
    """Pairs with at least ``need`` residuals <= tau and ``need`` >= -tau (< and > if strict).

    Per-pair ``tau``, strictness and ``need``; batches of bounded memory.
    """
    if len(pi) == 0:
        return np.zeros(0, bool)
    tau, strict, need = (np.broadcast_to(x, pi.shape) for x in (tau, strict, need))
    step = max(1, pair_batch // max(1, series.shape[1]))
    return np.concatenate([
        _count_pairs_unbatched(s64, series, pi[s:s + step], pj[s:s + step], tau[s:s + step],
                                  strict[s:s + step], need[s:s + step])
        for s in range(0, len(pi), step)])


def _heap_push(heap_val, heap_idx, rows, vals, idx):
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


def lsq_scan(g, rows, terms, best):
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
        _heap_push(heap_val, heap_idx, rows[i], score[i, j], orig[j])


def _bound(mean, var_up, var_low, tau, sig2):
    """(keep, strict) of the median pruning; see ``kernels_numba._may_enter`` (its numba twin)."""
    d = np.abs(mean) - tau
    strict = var_low > sig2
    keep = ((d <= 0) | (d * d <= var_up)) & ~(strict & (tau <= 0))
    return keep, strict


def _offer(pi, pj, spectral, chunk, keys, min_samples, pair_batch):
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
    _, median, std, n = pair_stats(spectral.values, chunk.series, pi, pj, True, pair_batch)
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


def offer_seeds(rows, cols, spectral, chunk, keys, *, min_samples, pair_batch=PAIR_BATCH):
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
    _offer(pi, pj, spectral, chunk, keys, min_samples, pair_batch)


def median_scan(g, rows, spectral, chunk, keys, correction, *, err, min_samples,
                    pair_batch=PAIR_BATCH):
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
        keep, strict = _bound(mean, var_up, var_low, tau[rr, None], sig2[rr, None])
        i, j = np.nonzero(keep)
        i = rr[i]
        ok = _count_pairs(spectral.values64, chunk.series, i, j + chunk.start, tau[i],
                             strict[keep], need[i], pair_batch)
        out_i.append(i[ok])
        out_j.append(j[ok] + chunk.start)
    if out_i:
        _offer(np.concatenate(out_i), np.concatenate(out_j), spectral, chunk, keys,
                  min_samples, pair_batch)


def median_scan_masked(rows, sums, spectral, chunk, keys, *, err, mean_err, min_samples,
                           pair_batch=PAIR_BATCH):
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
    keep, strict = _bound(low, var_up, var_low, tau[rows, None], sig2[rows, None])
    keep &= n >= min_samples
    i, j = np.nonzero(keep)
    pair_need = ((n[i, j] + 1) // 2).astype(np.int64)
    strict = strict[i, j]
    i = rows[i]
    j = j + chunk.start
    passed = _count_pairs(spectral.values64, chunk.series, i, j, tau[i], strict, pair_need,
                             pair_batch)
    _offer(i[passed], j[passed], spectral, chunk, keys, min_samples, pair_batch)


