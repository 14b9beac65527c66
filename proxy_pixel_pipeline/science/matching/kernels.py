"""Scan kernels of proxy matching, in a numpy and a numba implementation.

The matching driver (:mod:`.driver`) turns blocks of spectral pixels and
chunks of candidate pixels into pair sums (float32 matrix products); the
kernels here go over those sums and keep, for every spectral pixel, its best
candidates.  Each kernel exists twice, with the same signature: a numba
implementation (:mod:`.kernels_numba`: compiled, multi-threaded, fast) and a
numpy one (:mod:`.kernels_numpy`: slower, no compiler needed).  Both make the
same decisions from the same floating-point expressions, so the match tables
never depend on which one runs.

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

Arguments are grouped in NamedTuples of arrays (defined in :mod:`.types`
and re-exported here: :class:`SpectralRows`, :class:`CandidateChunk`,
:class:`LsqTerms`, :class:`MissingCorrection`, :class:`MaskedSums`, and the
running states :class:`TopM` and :class:`MedianKeys`); the public functions
unpack them for the compiled code.  What the bounds mean and why they never drop a competitor is
explained in :mod:`proxy_pixel_pipeline.science.matching`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, NamedTuple

from . import kernels_numpy
from .kernels_numpy import rank_within
from .types import (NO_INDEX, CandidateChunk, LsqTerms, MaskedSums, MedianKeys,
                    MissingCorrection, SpectralRows, TopM)

__all__ = ["BACKEND", "NO_INDEX", "CandidateChunk", "Kernels", "LsqTerms", "MaskedSums",
           "MedianKeys", "MissingCorrection", "SpectralRows", "TopM", "backend_info",
           "implementation", "limit_threads", "lsq_scan", "median_scan", "median_scan_masked",
           "offer_seeds", "pair_stats", "rank_within"]


class Kernels(NamedTuple):
    """One implementation of every kernel (see :func:`implementation`)."""

    name: str
    pair_stats: Callable
    lsq_scan: Callable
    offer_seeds: Callable
    median_scan: Callable
    median_scan_masked: Callable


def _of(module, name):
    """The kernels of ``module`` (:mod:`.kernels_numpy` or :mod:`.kernels_numba`) as a Kernels."""
    return Kernels(name, module.pair_stats, module.lsq_scan, module.offer_seeds,
                   module.median_scan, module.median_scan_masked)


def _import_numba():
    """(:mod:`.kernels_numba` or None, reason) by ``PPP_KERNELS`` and what is installed."""
    want = os.environ.get("PPP_KERNELS", "").strip().lower() or "auto"
    if want not in ("auto", "numpy", "numba"):
        raise ImportError(f"PPP_KERNELS must be 'numpy', 'numba' or 'auto', not {want!r}")
    if want == "numpy":
        return None, "PPP_KERNELS=numpy"
    from . import kernels_numba           # imports numba if it can
    if kernels_numba.numba is None:
        exc = kernels_numba.IMPORT_ERROR
        if want == "numba":
            raise ImportError(f"PPP_KERNELS=numba but numba cannot be imported: {exc}") from exc
        return None, "numba not installed"
    return kernels_numba, f"numba {kernels_numba.numba.__version__}"


_numba_kernels, _REASON = _import_numba()
numba = None if _numba_kernels is None else _numba_kernels.numba

_NUMPY = _of(kernels_numpy, "numpy")
_NUMBA = None if _numba_kernels is None else _of(_numba_kernels, "numba")


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

pair_stats = _ACTIVE.pair_stats
lsq_scan = _ACTIVE.lsq_scan
offer_seeds = _ACTIVE.offer_seeds
median_scan = _ACTIVE.median_scan
median_scan_masked = _ACTIVE.median_scan_masked
