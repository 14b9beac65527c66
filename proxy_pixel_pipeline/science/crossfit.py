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

A second part of the error depends on the temperature: an offset is the
level difference at the darks' median temperature, but dark current grows
with temperature in proportion to itself, so the difference does too.  Where
the trace is brighter than most candidates, every proxy is fainter than its
pixel and the error has one sign in frames warmer than the darks' median:
-0.28 ADU per trace pixel (+0.75 % of the flux) on a held-out set whose trace
is 7 times brighter than the median candidate.  :func:`offset_temperature_coefficient`
measures the offsets' relative change per degree from the darks themselves
(one number for the detector, ``ln 2 / doubling temperature``), and
:func:`offset_scale` scales each science frame's offsets by it; that halved
the error there and changed nothing on the demo data.  Stage 2 now scales the
offsets by each frame's own fitted temperature term instead
(:attr:`.scattered_light.ExcessField.offset_scale`); stage 1 still writes
this coefficient to its table's header (``OFFTCOEF``) for information.

Nothing here imports MPI; :func:`cross_fit_block` is what stage 1 runs per
block of spectral pixels instead of one :func:`.matching.match_block`
(``proxy_cross_fit``), with K/2 proxies chosen on each half so that its
table keeps K columns (``docs/unbiased_fluxes.md``: under scattered light that
varies across the frame a second K/2 per half made the white light worse),
then :func:`proxies_first`; it sums :func:`offset_temperature_sums` block by
block for the table's header.
"""

from __future__ import annotations

import numpy as np

from .matching import MatchResult, pair_statistics

__all__ = ["dark_halves", "half_statistics", "cross_fit_block", "proxies_first",
           "offset_temperature_coefficient", "offset_temperature_sums", "offset_scale",
           "CROSS_FIT_MIN_DARKS"]

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


def half_statistics(spectral, half_set, index):
    """Residual median, std and common valid samples of chosen pairs over one half's darks.

    Parameters
    ----------
    spectral : ndarray, shape (n, n_half)
        The spectral pixels' dark series restricted to the half (frame-centred, NaN = missing).
    half_set : CandidateSet
        The candidates' series over the same darks (:class:`.matching.CandidateSet` of
        ``candidates[:, half]``); ``index`` holds candidate indices in its input order.
    index : ndarray of int, shape (n, K)
        Chosen candidate of each pixel and rank (-1 = none).

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
        _, med, sd, n = pair_statistics(np.ascontiguousarray(spectral), half_set.series, rows,
                                        half_set.position[index[rows, ranks]])
        median[rows, ranks], std[rows, ranks], n_samples[rows, ranks] = med, sd, n
    return median, std, n_samples


def cross_fit_block(spectral, match, sets, halves=None, min_samples=10):
    """Cross-fitted proxies of a block of spectral pixels (K chosen on each half: 2K).

    Parameters
    ----------
    spectral : ndarray, shape (b, n_darks)
        The block's frame-centred dark series (NaN = missing).
    match : callable(spectral_half, h) -> MatchResult
        Chooses K proxies for the block restricted to half ``h`` (0 or 1) of
        the darks, e.g. :func:`.matching.match_block` with ``sets[h]`` (the
        two halves may choose different numbers: stage 1 takes ``ceil(K/2)``
        on half A and ``floor(K/2)`` on half B).
    sets : (CandidateSet, CandidateSet)
        The candidates over each half's darks (``CandidateSet(candidates[:, half])``,
        built once per rank; together as large as one set over all darks).
    halves : (ndarray, ndarray), optional
        The two halves of the darks (default :func:`dark_halves`).
    min_samples : int
        Pairs with fewer common valid darks in the measuring half get no
        offset (their proxy is dropped).

    Returns
    -------
    MatchResult, shape (b, K_A + K_B)
        Columns ``0..K_A-1``: chosen on half A, ``median`` (the offset), ``std``
        and ``n_samples`` measured on half B; the next ``K_B`` the other
        way round.  ``score`` is the selection score on the choosing half.
        A proxy dropped for too few samples leaves -1 in its column.
    """
    halves = dark_halves(spectral.shape[1]) if halves is None else halves
    parts = []
    for choose, measure in ((0, 1), (1, 0)):
        chosen = match(np.ascontiguousarray(spectral[:, halves[choose]]), choose)
        median, std, n = half_statistics(spectral[:, halves[measure]], sets[measure], chosen.index)
        drop = (chosen.index >= 0) & ((n < min_samples) | ~np.isfinite(median))
        index = np.where(drop, -1, chosen.index)
        parts.append(MatchResult(index=index, score=np.where(drop, np.nan, chosen.score),
                                 median=np.where(index >= 0, median, np.nan),
                                 std=np.where(index >= 0, std, np.nan),
                                 n_samples=np.where(index >= 0, n, 0).astype(np.int32)))
    return MatchResult(*(np.concatenate([getattr(p, f) for p in parts], axis=1)
                         for f in ("index", "score", "median", "std", "n_samples")))


def proxies_first(result):
    """Each row's proxies moved to its first columns, in their order (the -1 columns last).

    Parameters
    ----------
    result : MatchResult, shape (b, K)
        E.g. from :func:`cross_fit_block`, where a proxy dropped in half A's
        columns can leave a gap before half B's.

    Returns
    -------
    MatchResult, shape (b, K)
        Column 0 holds a proxy wherever the row has any, as in a plain match.
    """
    order = np.argsort(result.index < 0, axis=1, kind="stable")
    return MatchResult(*(np.take_along_axis(getattr(result, f), order, axis=1)
                         for f in ("index", "score", "median", "std", "n_samples")))


def offset_temperature_coefficient(spectral, sets, result, temperatures, halves=None, split=None):
    """The offsets' relative change per degree of CCD temperature, from the darks.

    Dark current doubles every few degrees in every pixel alike, so the
    level difference of a pixel and its proxy does too: ``r_d = o (1 + beta
    (T_d - T_m))`` with ``o`` the offset (the median of ``r`` over the darks)
    and ``T_m`` their median temperature.  ``beta`` (``ln 2 / doubling
    temperature``) is fitted over every cross-fitted pair at once, with the
    offset measured on the *choosing* half as the instrument for the one on
    the measuring half (an instrumental-variable fit: the measuring half's
    noise is in both ``r_d - o`` and ``o`` and would bias a plain fit towards
    0; measured 0.049 against 0.107 on the demo data, 0.102 with the
    instrument).  Stage 1 can accumulate the two sums block by block
    (:func:`offset_temperature_sums`) and divide at the end.

    Parameters
    ----------
    spectral : ndarray, shape (n, n_darks)
        Dark series of the spectral pixels (frame-centred, NaN = missing).
    sets : (CandidateSet, CandidateSet)
        As given to :func:`cross_fit_block`.
    result : MatchResult, shape (n, 2K)
        From :func:`cross_fit_block`.
    temperatures : ndarray, shape (n_darks,)
        The darks' CCD temperatures, degC (NaN where unknown: such darks are
        left out).
    halves : (ndarray, ndarray), optional
        As given to :func:`cross_fit_block`.
    split : int, optional
        Columns of ``result`` chosen on half A (default: half of them).

    Returns
    -------
    float
        ``beta``, 1/degC (0 when it cannot be measured: no temperatures or
        no spread).
    """
    num, den = offset_temperature_sums(spectral, sets, result, temperatures, halves, split)
    return num / den if den > 0 else 0.0


def offset_temperature_sums(spectral, sets, result, temperatures, halves=None, split=None,
                            instrument=None):
    """The two sums of :func:`offset_temperature_coefficient` for one block (``num``, ``den``;
    ``result`` as :func:`cross_fit_block` returns it, before :func:`proxies_first`).

    ``instrument`` (optional, shaped like ``result.index``): each pair's residual median on
    its choosing half, the ``median`` of the choosing halves' :func:`.matching.match_block`
    results side by side, which saves recomputing them (most of the cost).
    """
    temperatures = np.asarray(temperatures, float)
    halves = dark_halves(spectral.shape[1]) if halves is None else halves
    k = result.index.shape[1] // 2 if split is None else int(split)
    num = den = 0.0
    for cols, choose, measure in ((slice(0, k), 0, 1), (slice(k, None), 1, 0)):
        index = result.index[:, cols]
        t = temperatures[halves[measure]]
        rows, ranks = np.nonzero(index >= 0)
        if not np.isfinite(t).any() or not len(rows):
            continue
        t = t - np.nanmedian(t)
        chosen = index[rows, ranks]
        if instrument is None:
            inst = pair_statistics(np.ascontiguousarray(spectral[:, halves[choose]]),
                                   sets[choose].series, rows, sets[choose].position[chosen])[1]
        else:
            inst = np.asarray(instrument, float)[:, cols][rows, ranks]
        offset = result.median[:, cols][rows, ranks]
        measured = sets[measure].series[sets[measure].position[chosen]].astype(float)
        resid = np.asarray(spectral, float)[rows][:, halves[measure]] - measured - offset[:, None]
        ok = np.isfinite(resid) & np.isfinite(t)[None, :] & np.isfinite(inst)[:, None] \
            & np.isfinite(offset)[:, None]
        z = np.where(ok, inst[:, None] * t[None, :], 0.0)
        num += float(np.sum(z * np.where(ok, resid, 0.0)))
        den += float(np.sum(z * np.where(ok, offset[:, None] * t[None, :], 0.0)))
    return num, den


def offset_scale(beta, temperature, reference):
    """Factor on a science frame's offsets: ``1 + beta (T - T_ref)`` (1 where unknown).

    Parameters
    ----------
    beta : float
        :func:`offset_temperature_coefficient`, 1/degC.
    temperature : float or ndarray
        The frame's CCD temperature, degC.
    reference : float
        The darks' median CCD temperature, degC.
    """
    scale = 1.0 + beta * (np.asarray(temperature, float) - reference)
    return np.where(np.isfinite(scale), scale, 1.0)
