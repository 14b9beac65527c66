"""The numba implementation of the matching kernels (compiled, multi-threaded).

The compiled twins of :mod:`.kernels_numpy` (same decisions from the same
floating-point expressions); :mod:`.kernels` chooses which implementation
runs.  This module imports without numba (then :data:`numba` is None, the
decorators below leave the functions as plain Python and nothing here is
used): :mod:`.kernels` imports it only when numba may be used at all.
:class:`~.types.TopM` rows are kept as max-heaps here.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels_numpy
from .types import PAIR_BATCH

try:
    import numba
except ImportError as exc:            # the numpy kernels only; see kernels.py
    numba = None
    IMPORT_ERROR = exc
else:
    IMPORT_ERROR = None

if numba is not None:
    njit, prange = numba.njit, numba.prange
else:
    def njit(**options):
        """Stand-in for ``numba.njit`` without numba: leaves the function as it is."""
        return lambda function: function

    prange = range

__all__ = ["lsq_scan", "median_near", "median_of", "median_scan", "median_scan_masked",
           "offer_seeds", "pair_stats"]

_TILE = 512       # values per vectorised test in the compiled scans (multiple of 8)
_ROW_GROUP = 16   # rows sharing a tile of candidate series in cache (median scan)


# --------------------------------------------------------------------------- compiled kernels
#
# Their long positional argument lists are what numba compiles; only the
# public wrappers further down call them.

_jit = njit(cache=True, nogil=True, parallel=True)
_jit1 = njit(cache=True, nogil=True)


@njit(cache=True, nogil=True, inline="always")
def _may_enter(mean_low, mean_high, sum_r2, ee, inv_n, tau, sig2):
    # The median rule's pruning bound (the numba twin of kernels_numpy._bound): can a
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
def median_of(s, c, buf):
    """Median of the valid residuals ``s - c`` (ADU; numpy's for an even count), NaN if none.

    By quickselect, compiled.  ``s``, ``c``: series of shape (n_darks,), NaN =
    missing; ``buf``: float64 scratch of the same length (overwritten).
    """
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
    # The kk-th smallest residual (0-based) from the window pass of median_near.
    if kk < cb:
        return below if kk == cb - 1 else fallback
    if kk >= cb + m:
        return above if kk == cb + m else fallback
    if wmin == wmax:
        return wmin
    _select_kth(buf, 0, m - 1, kk - cb)
    return buf[kk - cb]


@_jit1
def median_near(s, c, tau, buf):
    """Exact median of the valid residuals ``s - c`` (ADU), fast when it lies in ``[-tau, tau]``.

    One branch-free pass counts the values below and above that window,
    keeps the nearest outside ones and collects the window (often all equal:
    integer data, tau = 0).  Compiled.  ``s``: float64 series, ``c``: float32
    series (shape (n_darks,), NaN = missing); ``buf``: float64 scratch of the
    same length.  NaN when no sample is valid in both, or when the window pass
    cannot tell (then use :func:`median_of`).
    """
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
    for task in prange(n_tasks):
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
            median[p] = median_of(s, c, buf) if with_median else np.nan


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
    for r in prange(len(rows)):
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
    med = median_near(si, c, ti if ti < np.inf else np.inf, buf)
    if med != med:
        med = median_of(s32i, c, buf)
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
    for grp in prange(n_groups):
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
    for r in prange(len(rows)):
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
    for r in prange(len(rows)):
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


def pair_stats(spectral, candidates, pi, pj, with_median=True, pair_batch=PAIR_BATCH):
    """The numba :func:`.kernels_numpy.pair_stats`, same results (``pair_batch`` unused)."""
    n = len(pi)
    if n == 0:
        return kernels_numpy.pair_stats(spectral, candidates, pi, pj, with_median, pair_batch)
    lsq, median, std = np.empty(n), np.empty(n), np.empty(n)
    count = np.empty(n, np.int64)
    _nb_pair_stats(spectral, candidates, np.ascontiguousarray(pi, np.int64),
                   np.ascontiguousarray(pj, np.int64), with_median, lsq, median, std, count)
    return lsq, median, std, count


def lsq_scan(g, rows, terms, best):
    """The numba :func:`.kernels_numpy.lsq_scan`: same signature and results."""
    if len(rows) == 0:
        return
    c_max = float(np.max(terms.col_sq)) if len(terms.col_sq) else 0.0
    _nb_lsq_scan(g, rows, terms.row_sq, terms.row_inv_n, terms.col_sq, terms.col_sq32, c_max,
                 terms.col_index, best.score, best.index)


def offer_seeds(rows, cols, spectral, chunk, keys, *, min_samples, pair_batch=PAIR_BATCH):
    """The numba :func:`.kernels_numpy.offer_seeds`: same signature and results."""
    _nb_offer_seeds(rows, cols, spectral.values, spectral.values64, chunk.series, chunk.index,
                    min_samples, *keys)


def median_scan(g, rows, spectral, chunk, keys, correction, *, err, min_samples,
                pair_batch=PAIR_BATCH):
    """The numba :func:`.kernels_numpy.median_scan`: same signature and results."""
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


def median_scan_masked(rows, sums, spectral, chunk, keys, *, err, mean_err, min_samples,
                       pair_batch=PAIR_BATCH):
    """The numba :func:`.kernels_numpy.median_scan_masked`: same signature and results."""
    _nb_median_scan_masked(rows, sums.n, sums.sum_r, sums.sum_r2, sums.row_norm, sums.col_norm,
                           err, mean_err, spectral.values, spectral.values64, chunk.series,
                           chunk.index, chunk.start, min_samples, *keys)
