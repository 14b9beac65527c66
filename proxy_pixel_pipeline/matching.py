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
tie-breakers, exactly as a loop over candidates with numpy would choose.

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

Compiled scans (numba when installed; numpy fallbacks give the same results)
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
computes it, how candidates are chunked, or whether numba is installed.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

try:  # optional compiled kernels; numpy fallbacks give identical results
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None

__all__ = ["MatchResult", "CandidateSet", "match_block", "pair_statistics", "kernel_threads",
           "estimate_work", "have_numba", "profile_phases"]

_EPS32 = float(np.finfo(np.float32).eps)
# Rounding of float32 sums of squares, as a multiple of n * eps * (|s| + |c|)^2:
# an upper bound on the BLAS accumulation error, so the exact median pruning
# never drops a pair that could compete.
_ERR_FACTOR = 4.0

_USE_NUMBA = numba is not None and os.environ.get("PPP_NO_NUMBA", "") == ""
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
    return _USE_NUMBA


@contextmanager
def kernel_threads(n_threads):
    """Limit the compiled kernels (numba) to ``n_threads`` threads within the block.

    BLAS threads are limited separately (threadpoolctl); use both so that
    ranks x threads never exceeds the cores.
    """
    if not _USE_NUMBA:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(old)


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


# --------------------------------------------------------------------------- kernels
#
# Each kernel has a numba version (``_nb_*``) and a numpy version (``_np_*``)
# that make the same decisions from the same floating-point expressions, so
# that results never depend on whether numba is installed.

_INT_MAX = np.iinfo(np.int64).max
_TILE = 512       # values per vectorised test in the compiled scans (multiple of 8)
_ROW_GROUP = 16   # rows sharing a tile of candidate series in cache (median scan)


def _np_pair_stats(spectral, candidates, pi, pj):
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


def _np_count_pairs(s64, series, pi, pj, tau, strict, need):
    """Pairs with at least ``need`` residuals <= tau and ``need`` >= -tau (< and > if strict)."""
    r = s64[pi] - series[pj].astype(np.float64)
    t = tau[:, None]
    st = strict[:, None]
    a = np.count_nonzero(np.where(st, r < t, r <= t), axis=1)
    b = np.count_nonzero(np.where(st, r > -t, r >= -t), axis=1)
    return (a >= need) & (b >= need)


def _np_heap_push(heap_val, heap_idx, rows, vals, idx):
    """Merge listed (row, value, index) entries into each row's M best by (value, index)."""
    b, m = heap_val.shape
    all_rows = np.concatenate([np.repeat(np.arange(b), m), rows])
    all_val = np.concatenate([heap_val.ravel(), vals])
    all_idx = np.concatenate([heap_idx.ravel(), idx])
    order = np.lexsort((all_idx, all_val, all_rows))
    rank = _rank_within(all_rows[order])
    keep = order[rank < m]
    heap_val.reshape(-1)[:] = all_val[keep]
    heap_idx.reshape(-1)[:] = all_idx[keep]


def _np_lsq_scan(g, rows, a, inv_b, c_sq, orig, heap_val, heap_idx):
    score = (a[rows, None] + (g[rows].astype(np.float64) + c_sq[None, :])) * inv_b[rows, None]
    hit = score <= heap_val[rows, -1][:, None]          # numpy heaps are sorted rows
    i, j = np.nonzero(hit)
    if len(i):
        _np_heap_push(heap_val, heap_idx, rows[i], score[i, j], orig[j])


def _np_bound(mean, var_up, var_low, tau, sig2):
    """(keep, strict) of the median pruning; see :func:`_nb_median_scan`."""
    d = np.abs(mean) - tau
    strict = var_low > sig2
    keep = ((d <= 0) | (d * d <= var_up)) & ~(strict & (tau <= 0))
    return keep, strict


def _np_median_scan(g, rows, corr_row, corr1, s_total, s_sq, s_norm, inv_n, need, s64, tau, sig2,
                    c_total, c_sq, c_norm, series, j0, err, pair_batch):
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
        ok = _count_pairs(s64, series, i, j + j0, tau[i], strict[keep], need[i], pair_batch)
        out_i.append(i[ok])
        out_j.append(j[ok] + j0)
    return np.concatenate(out_i), np.concatenate(out_j)


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True, parallel=True)
    _jit1 = numba.njit(cache=True, nogil=True)

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
                            mean = ((st - tt[j]) + corr[j]) * ni
                            sum_r2 = (ss + np.float64(gi[j])) + qt[j]
                            e = sn + nt[j]
                            ee = err * (e * e)
                            var_up = (sum_r2 + ee) * ni - mean * mean
                            var_low = (sum_r2 - ee) * ni - mean * mean
                            dd = abs(mean) - ti
                            flags[j] = ((dd <= 0) | (dd * dd <= var_up)) & ~(
                                (var_low > si2) & (ti <= 0))
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
                                mean = ((st - tt[j]) + corr[j]) * ni
                                sum_r2 = (ss + np.float64(gi[j])) + qt[j]
                                e = sn + nt[j]
                                ee = err * (e * e)
                                var_up = (sum_r2 + ee) * ni - mean * mean
                                var_low = (sum_r2 - ee) * ni - mean * mean
                                dd = abs(mean) - ti
                                if not (((dd <= 0) or (dd * dd <= var_up))
                                        and not ((var_low > si2) and (ti <= 0))):
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
                ee = err * (e * e)
                mean = np.float64(sum_r[r, j]) / n
                me = mean_err * e / n
                low = max(abs(mean) - me, 0.0)
                high = abs(mean) + me
                var_up = (np.float64(sum_r2[r, j]) + ee) / n - low * low
                var_low = (np.float64(sum_r2[r, j]) - ee) / n - high * high
                dd = low - ti
                strict = var_low > si2
                if ((dd <= 0) or (dd * dd <= var_up)) and not (strict and ti <= 0):
                    _offer_median(s64[i], s32[i], series[j + j0], min_samples, orig[j], buf, km,
                                  key_sgn[i], kd, key_idx[i], key_n[i])


def _pair_stats(spectral, candidates, pi, pj, with_median=True):
    if _USE_NUMBA and len(pi):
        n = len(pi)
        lsq, median, std = np.empty(n), np.empty(n), np.empty(n)
        count = np.empty(n, np.int64)
        _nb_pair_stats(spectral, candidates, np.ascontiguousarray(pi, np.int64),
                       np.ascontiguousarray(pj, np.int64), with_median, lsq, median, std, count)
        return lsq, median, std, count
    return _np_pair_stats(spectral, candidates, pi, pj)


def _count_pairs(s64, series, pi, pj, tau, strict, need, pair_batch):
    """Counting test of listed pairs (per-pair tau, strictness and needed count), numpy."""
    if len(pi) == 0:
        return np.zeros(0, bool)
    tau, strict, need = (np.broadcast_to(x, pi.shape) for x in (tau, strict, need))
    step = max(1, pair_batch // max(1, series.shape[1]))
    return np.concatenate([
        _np_count_pairs(s64, series, pi[s:s + step], pj[s:s + step], tau[s:s + step],
                        strict[s:s + step], need[s:s + step]) for s in range(0, len(pi), step)])


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
    return _pair_stats(np.ascontiguousarray(spectral, np.float32),
                       np.ascontiguousarray(candidates, np.float32),
                       np.asarray(pairs_i), np.asarray(pairs_j))


def _batched_stats(spectral, candidates, pi, pj, pair_batch, with_median=True):
    """:func:`pair_statistics` in batches of bounded memory (median NaN if not wanted)."""
    if _USE_NUMBA:
        return _pair_stats(spectral, candidates, pi, pj, with_median)
    step = max(1, pair_batch // max(1, spectral.shape[1]))
    parts = [_pair_stats(spectral, candidates, pi[s:s + step], pj[s:s + step])
             for s in range(0, max(len(pi), 1), step)]
    return tuple(np.concatenate([p[f] for p in parts]) for f in range(4))


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
        rank = _rank_within(pairs_i[order])
        order = order[rank < n_median]
        # Step 2: among those, smallest std first.
        order = order[np.lexsort((pairs_j[order], absmed[order], std[order], pairs_i[order]))]
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


def _new_heaps(b, m):
    return np.full((b, m), np.inf), np.full((b, m), _INT_MAX, np.int64)


def _scan(g, rows, a, inv_b, c_sq, c_sq32, orig, heap_val, heap_idx):
    if len(rows) == 0:
        return
    if _USE_NUMBA:
        c_max = float(np.max(c_sq)) if len(c_sq) else 0.0
        _nb_lsq_scan(g, rows, a, inv_b, c_sq, c_sq32, c_max, orig, heap_val, heap_idx)
    else:
        _np_lsq_scan(g, rows, a, inv_b, c_sq, orig, heap_val, heap_idx)


def _lsq_prefilter(block, cand, m, min_samples):
    """Each pixel's ``m`` best candidates (original indices, -1 = none) by the float32 score."""
    b = len(block)
    heap_val, heap_idx = _new_heaps(b, m)
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
        _scan(g, rows, block.sq, inv_b, cand.sq[sl], cand.sq32[sl], cand.order[sl],
              heap_val, heap_idx)
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
            _scan(score, rows, zeros_b, ones_b, np.zeros(width), np.zeros(width, np.float32),
                  cand.order[cand.n_complete + sl.start:cand.n_complete + sl.stop],
                  heap_val, heap_idx)
            t = _tick("scan", t)
    return np.where(np.isfinite(heap_val), heap_idx, -1)


# --------------------------------------------------------------------------- median pass


def _seeds(block, cand, q):
    """Per pixel, the ``q`` candidates (internal indices) whose mean level is nearest its own."""
    b = len(block)
    q = min(q, len(cand))
    level = np.nan_to_num(block.mean)
    pos = np.searchsorted(cand.sorted_mean, level)
    start = np.clip(pos - q // 2, 0, len(cand) - q)
    window = start[:, None] + np.arange(q)
    order = np.argsort(np.abs(np.nan_to_num(cand.sorted_mean[window]) - level[:, None]), axis=1,
                       kind="stable")
    cols = cand.by_mean[np.take_along_axis(window, order, 1)]
    return np.repeat(np.arange(b), q), cols.ravel()


class _MedianState:
    """Each pixel's k best keys (|median|, std, original index) found so far, sorted."""

    def __init__(self, block, cand, k, min_samples, pair_batch):
        self.block, self.cand = block, cand
        self.min_samples, self.pair_batch = min_samples, pair_batch
        b = len(block)
        self.med = np.full((b, k), np.inf)          # |median|
        self.sgn = np.full((b, k), np.nan)          # median
        self.std = np.full((b, k), np.inf)
        self.idx = np.full((b, k), _INT_MAX, np.int64)
        self.n = np.zeros((b, k), np.int64)

    def add(self, pi, pj):
        """Score pairs (block row, internal candidate index) exactly and keep the best keys.

        A pair already kept must not be offered again.
        """
        if len(pi) == 0:
            return
        _, median, std, n = _batched_stats(self.block.values, self.cand.series, pi, pj,
                                           self.pair_batch)
        ok = n >= self.min_samples
        pi, median, std, n = pi[ok], median[ok], std[ok], n[ok]
        orig = self.cand.order[pj[ok]]
        b, k = self.med.shape
        rows = np.concatenate([np.repeat(np.arange(b), k), pi])
        cols = [(self.med, np.abs(median)), (self.sgn, median), (self.std, std),
                (self.idx, orig), (self.n, n)]
        merged = [np.concatenate([old.ravel(), new]) for old, new in cols]
        order = np.lexsort((merged[3], merged[2], merged[0], rows))
        keep = order[_rank_within(rows[order]) < k]
        self.med, self.sgn, self.std, self.idx, self.n = (x[keep].reshape(b, k) for x in merged)

    @property
    def tau(self):
        return self.med[:, -1]

    @property
    def sig2(self):
        return self.std[:, -1] ** 2

    def result(self, k_best):
        """The K best of the kept keys by std (ties: |median|, index)."""
        b, k = self.med.shape
        found = self.idx < _INT_MAX
        rows = np.repeat(np.arange(b), k)[found.ravel()]
        std, med, idx = self.std[found], self.med[found], self.idx[found]
        order = np.lexsort((idx, med, std, rows))
        rank = _rank_within(rows[order])
        order, rank = order[rank < k_best], rank[rank < k_best]
        out = MatchResult.empty(b, k_best)
        r = rows[order]
        out.index[r, rank] = idx[order]
        out.score[r, rank] = std[order]
        out.median[r, rank] = self.sgn[found][order]
        out.std[r, rank] = std[order]
        out.n_samples[r, rank] = self.n[found][order]
        return out


def _median_pass(block, cand, n_median, min_samples, seeds, pair_batch):
    """The median rule over all candidates (pruned as in the module docstring)."""
    t0 = time.perf_counter()
    b, d = len(block), block.n_darks
    state = _MedianState(block, cand, n_median, min_samples, pair_batch)
    usable = block.n_valid >= min_samples
    si, sj = _seeds(block, cand, seeds)
    keep = usable[si]
    seed_i, seed_j = si[keep], sj[keep]
    if _USE_NUMBA:
        cols = sj.reshape(b, -1)
        _nb_offer_seeds(np.flatnonzero(usable).astype(np.int64), cols, block.values,
                        block.values.astype(np.float64), cand.series, cand.order, min_samples,
                        state.med, state.sgn, state.std, state.idx, state.n)
    else:
        state.add(seed_i, seed_j)
    seed_keys = np.unique(seed_i.astype(np.int64) * len(cand) + seed_j)

    def unseen(pi, pj):
        """Drop pairs that were seeds (already offered)."""
        if len(seed_keys) == 0 or len(pi) == 0:
            return pi, pj
        key = pi.astype(np.int64) * len(cand) + pj
        pos = np.minimum(np.searchsorted(seed_keys, key), len(seed_keys) - 1)
        new = seed_keys[pos] != key
        return pi[new], pj[new]

    s64 = block.values.astype(np.float64)
    with np.errstate(divide="ignore"):
        inv_n = 1.0 / block.n_valid
    need = (block.n_valid + 1) // 2
    rows = np.flatnonzero(usable).astype(np.int64)
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
        common = (g, rows, corr_row, corr1, block.total, block.sq, block.norm, inv_n)
        c_args = (cand.total[sl], cand.sq[sl], cand.norm[sl], cand.series)
        if _USE_NUMBA:
            tiles = np.arange(0, sl.stop - sl.start, _TILE)
            _nb_median_scan(*common, block.values, s64, cand.total[sl],
                            cand.total32[sl], cand.sq[sl], cand.sq32[sl], cand.norm[sl],
                            np.maximum.reduceat(np.abs(cand.total[sl]), tiles),
                            np.maximum.reduceat(cand.sq[sl], tiles),
                            np.maximum.reduceat(cand.norm[sl], tiles), cand.series,
                            cand.order[sl], sl.start, err, min_samples, state.med, state.sgn,
                            state.std, state.idx, state.n)
        else:
            state.add(*unseen(*_np_median_scan(*common, need, s64, state.tau, state.sig2,
                                               *c_args, sl.start, err, pair_batch)))
        t = _tick("scan", t)

    if len(cand) > cand.n_complete:
        sub = block.masked
        err = _ERR_FACTOR * 3 * (d + 2) * _EPS32
        for sl in cand.partial_chunks():
            part = cand.partial.rows(sl)
            n, sum_r, sum_r2 = _masked_sums(sub, part)
            n, sum_r, sum_r2 = n[rows], sum_r[rows], sum_r2[rows]
            t = _tick("masked products", t)
            if _USE_NUMBA:
                j0 = cand.n_complete + sl.start
                _nb_median_scan_masked(rows, n, sum_r, sum_r2, sub.norm[rows], part.norm, err,
                                       err * math.sqrt(d), block.values, s64, cand.series,
                                       cand.order[j0:j0 + sl.stop - sl.start], j0, min_samples,
                                       state.med, state.sgn, state.std, state.idx, state.n)
                t = _tick("masked scan", t)
                continue
            n, sum_r, sum_r2 = (x.astype(np.float64) for x in (n, sum_r, sum_r2))
            e = sub.norm[rows, None] + part.norm[None, :]
            ee = err * (e * e)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = sum_r / n
                mean_err = err * math.sqrt(d) * e / n
                low = np.maximum(np.abs(mean) - mean_err, 0.0)
                high = np.abs(mean) + mean_err
                var_up = (sum_r2 + ee) / n - low * low
                var_low = (sum_r2 - ee) / n - high * high
            keep, strict = _np_bound(low, var_up, var_low, state.tau[rows, None],
                                     state.sig2[rows, None])
            keep &= n >= min_samples
            i, j = np.nonzero(keep)
            pair_need = ((n[i, j] + 1) // 2).astype(np.int64)
            strict = strict[i, j]
            i = rows[i]
            j = j + sl.start + cand.n_complete
            passed = _count_pairs(s64, cand.series, i, j, state.tau[i], strict, pair_need,
                                  pair_batch)
            state.add(*unseen(i[passed], j[passed]))
            t = _tick("scan", t)
    return state


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
        state = _median_pass(block, cand, n_median, min_samples, max(median_seeds, n_median),
                             pair_batch)
        t = time.perf_counter()
        result = state.result(proxy_count)
        _tick("select", t)
        return result
    lsq_rule = method == "lsq"
    m = min(max(prefilter_count, proxy_count, 0 if lsq_rule else n_median), len(cand))
    best = _lsq_prefilter(block, cand, m, min_samples)
    t = time.perf_counter()
    pi, col = np.nonzero(best >= 0)
    orig = best[pi, col]
    lsq, median, std, n = _batched_stats(block.values, cand.series, pi, cand.position[orig],
                                         pair_batch, with_median=not lsq_rule)
    lsq = np.where(n >= min_samples, lsq, np.nan)
    result = _select(pi, orig, (lsq, median, std, n), b, method, proxy_count, n_median)
    if lsq_rule:     # medians of the chosen proxies only
        i, k = np.nonzero(result.index >= 0)
        result.median[i, k] = _batched_stats(block.values, cand.series, i,
                                             cand.position[result.index[i, k]], pair_batch)[1]
    _tick("exact statistics", t)
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
