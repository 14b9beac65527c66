"""Candidate sets and spectral blocks laid out for the pair sums of proxy matching.

:class:`CandidateSet` holds the non-spectral pixels every spectral pixel is
compared with (prepared once per rank), :class:`SpectralBlock` a block of
spectral pixels, :class:`MaskedSeries` either laid out for the general masked
sums of :func:`masked_sums`.  What the sums are and why: see
:mod:`proxy_pixel_pipeline.science.matching`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CandidateSet", "MaskedSeries", "SpectralBlock", "masked_sums"]


class SpectralBlock:
    """A block of spectral pixels prepared for the pair sums (see the package docstring).

    Holds the series (float32), zero-filled and scaled by -2 for the
    products, the missing-sample mask and per-row sums in float64.

    Parameters
    ----------
    values : ndarray, shape (b, n_darks)
        Frame-centred dark series, ADU, NaN where missing.
    """

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
            self._masked = MaskedSeries(self.values, spectral=True)
        return self._masked

    def __len__(self):
        return len(self.values)


class MaskedSeries:
    """Series laid out for the general masked sums as single matrix products.

    Candidates hold ``[W, C0, C0^2]`` (validity, zero-filled values, squares),
    spectral pixels ``[S0^2, -2 S0, W]`` and ``[S0, -W]``, so that (see
    :func:`masked_sums`) ``sum r^2``, ``sum r`` and ``n`` are one product each.

    Parameters
    ----------
    values : ndarray, shape (n, n_darks)
        Dark series, ADU, NaN where missing.
    spectral : bool
        True for spectral pixels, False for candidates.
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
        out = MaskedSeries.__new__(MaskedSeries)
        out.n_darks, out.norm, out.side = self.n_darks, self.norm[sl], self.side[sl]
        return out


def masked_sums(a: MaskedSeries, b: MaskedSeries, need_sum=True):
    """(n, sum r, sum r^2) of every pair of spectral rows ``a`` and candidate rows ``b``.

    float32 products; n is exact (integers), the sums carry float32 rounding.

    Parameters
    ----------
    a, b : MaskedSeries
        Spectral rows (``spectral=True``) and candidate rows.
    need_sum : bool
        False: skip ``sum r`` (returned as None).

    Returns
    -------
    n, sum_r, sum_r2 : ndarray of float32, shape (len(a), len(b))
        Common valid samples, sum of residuals (ADU) and of squared
        residuals (ADU**2).
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
        self.partial = MaskedSeries(self.series[self.n_complete:], spectral=False)
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
