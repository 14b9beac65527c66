"""Argument groups of the matching kernels: NamedTuples of arrays and running states.

The public kernels of :mod:`.kernels` take these groups (:class:`SpectralRows`,
:class:`CandidateChunk`, :class:`LsqTerms`, :class:`MissingCorrection`,
:class:`MaskedSums`) and update the running states (:class:`TopM` for the LSQ
rule, :class:`MedianKeys` for the median rule) in place; both implementations
(:mod:`.kernels_numpy`, :mod:`.kernels_numba`) unpack them the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["NO_INDEX", "PAIR_BATCH", "CandidateChunk", "LsqTerms", "MaskedSums", "MedianKeys",
           "MissingCorrection", "SpectralRows", "TopM"]

NO_INDEX = np.iinfo(np.int64).max   # candidate index of an empty slot in TopM / MedianKeys
PAIR_BATCH = 1 << 21                # default bound on residual values held at once (numpy)


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

