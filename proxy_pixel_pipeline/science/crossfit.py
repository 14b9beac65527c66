"""Cross-fitted proxies: chosen on one half of the darks, their offsets measured on the other.

Why: the median rule keeps the candidates whose residual median over the
darks is closest to zero, and stage 2 then adds that same median as the
proxy's offset.  Both come from the same darks, so the offset inherits the
selection: among the candidates whose *measured* median is near zero, those
whose true level lies on the side where candidates are more numerous win, and
their offset is off in the same direction for all K proxies.  The error is
the noise of a median over the darks (``sqrt(pi/2) sigma / sqrt(N)``, a few
ADU) weighted by the slope of the candidates' level distribution at the
pixel, and it does not average away over the K proxies.  Measured against the
simulator's truth (``docs/unbiased_fluxes.md``): offsets 0.067 ADU too low per
trace pixel on the demo data (+0.18 % of the flux), 0.098 ADU too high on a
60 x 250 set whose trace lies where candidates are brighter (-0.25 %); chosen
on the even darks with offsets from the odd ones, -0.003 and -0.030 ADU
(within the measurement's noise).

Remedy (cross-fitting): the darks are split into two interleaved halves
(:func:`dark_halves`; interleaved so that both span the orbit's temperatures).
K proxies are chosen on half A and their offsets measured on half B, K more
chosen on B with offsets from A (:func:`cross_fit_block`): 2K proxies, each
offset independent of its own selection.  Each proxy's offset is measured on
half the darks, but the spectral pixel's own dark noise (common to all
proxies, the part that does not average) enters from both halves alike, and
the 2K proxies average the science frame's noise better: the in-trace
residual went from 1.038 to 1.026 times the oracle on the demo data (K = 16
per half against 16 on all darks).  Matching costs the same: each half is
half the work.

Nothing here imports MPI; :func:`cross_fit_block` is what stage 1 runs per
block of spectral pixels instead of one :func:`.matching.match_block`.
"""

from __future__ import annotations

import numpy as np

from .matching import MatchResult, pair_statistics

__all__ = ["dark_halves", "half_statistics", "cross_fit_block", "CROSS_FIT_MIN_DARKS"]

#: Fewest darks for cross-fitting, as a multiple of ``min_valid_samples``: each half must
#: hold that many.
CROSS_FIT_MIN_DARKS = 2


def dark_halves(n_darks):
    """The two interleaved halves of the darks: even and odd positions in time order.

    Parameters
    ----------
    n_darks : int

    Returns
    -------
    a, b : ndarray of int
        Indices of the darks in each half (``a`` holds the extra one when
        ``n_darks`` is odd).
    """
    order = np.arange(int(n_darks))
    return order[0::2], order[1::2]


def half_statistics(spectral, candidates, index, frames):
    """Residual median, std and common valid samples of chosen pairs over some darks only.

    Parameters
    ----------
    spectral : ndarray, shape (n, n_darks)
        The spectral pixels' dark series (frame-centred, NaN = missing).
    candidates : ndarray, shape (n_candidates, n_darks)
        The candidates' dark series, in the order ``index`` refers to.
    index : ndarray of int, shape (n, K)
        Chosen candidate of each pixel and rank (-1 = none).
    frames : ndarray of int
        The darks to measure on.

    Returns
    -------
    median, std : ndarray of float, shape (n, K)
        ADU (NaN where no proxy or no common sample).
    n_samples : ndarray of int32, shape (n, K)
    """
    index = np.asarray(index)
    median = np.full(index.shape, np.nan)
    std = np.full(index.shape, np.nan)
    n_samples = np.zeros(index.shape, np.int32)
    rows, ranks = np.nonzero(index >= 0)
    if len(rows):
        _, med, sd, n = pair_statistics(np.ascontiguousarray(spectral[:, frames]),
                                        np.ascontiguousarray(candidates[:, frames]),
                                        rows, index[rows, ranks])
        median[rows, ranks], std[rows, ranks], n_samples[rows, ranks] = med, sd, n
    return median, std, n_samples


def cross_fit_block(spectral, candidates, match, halves=None, min_samples=10):
    """2K cross-fitted proxies of a block of spectral pixels.

    Parameters
    ----------
    spectral : ndarray, shape (b, n_darks)
        The block's frame-centred dark series (NaN = missing).
    candidates : ndarray, shape (n_candidates, n_darks)
        All candidates' dark series (the indices ``match`` returns refer to
        this order).
    match : callable(spectral_half, half) -> MatchResult
        Chooses K proxies on the darks ``half`` (an index array) from the
        block's series restricted to them, e.g. :func:`.matching.match_block`
        with a :class:`.matching.CandidateSet` of ``candidates[:, half]``
        built once per half.
    halves : (ndarray, ndarray), optional
        The two halves of the darks (default :func:`dark_halves`).
    min_samples : int
        Pairs with fewer common valid darks in the measuring half get no
        offset (their proxy is dropped).

    Returns
    -------
    MatchResult, shape (b, 2K)
        Columns ``0..K-1``: chosen on half A, ``median`` (the offset), ``std``
        and ``n_samples`` measured on half B; columns ``K..2K-1`` the other
        way round.  ``score`` is the selection score on the choosing half.
    """
    a, b = dark_halves(spectral.shape[1]) if halves is None else halves
    parts = []
    for choose, measure in ((a, b), (b, a)):
        chosen = match(np.ascontiguousarray(spectral[:, choose]), choose)
        median, std, n = half_statistics(spectral, candidates, chosen.index, measure)
        drop = (chosen.index >= 0) & ((n < min_samples) | ~np.isfinite(median))
        index = np.where(drop, -1, chosen.index)
        parts.append(MatchResult(index=index, score=np.where(drop, np.nan, chosen.score),
                                 median=np.where(index >= 0, median, np.nan),
                                 std=np.where(index >= 0, std, np.nan),
                                 n_samples=np.where(index >= 0, n, 0).astype(np.int32)))
    return MatchResult(*(np.concatenate([getattr(p, f) for p in parts], axis=1)
                         for f in ("index", "score", "median", "std", "n_samples")))
