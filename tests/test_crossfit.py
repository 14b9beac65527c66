"""Cross-fitted proxies (science/crossfit.py) and the clip of the proxies' combination
(science/background.py): the background's mean error where the dark levels are skewed.
Pure science, no MPI."""

import numpy as np
import pytest

from proxy_pixel_pipeline.science.background import CLIP_SIGMA, combine_proxies
from proxy_pixel_pipeline.science.crossfit import (cross_fit_block, dark_halves, half_statistics,
                                                 offset_scale, offset_temperature_coefficient,
                                                 offset_temperature_sums, proxies_first)
from proxy_pixel_pipeline.science.matching import (CandidateSet, MatchResult, match_block,
                                                   pair_statistics)

GAIN, READ = 1.5, 3.5
MATCH = dict(method="median", proxy_count=16, median_candidates=10, min_samples=5)


def _skewed_set(n_spec=3000, n_cand=20000, n_darks=20, seed=7):
    """Dark series of candidates with log-normal levels and spectral pixels brighter than
    97 % of them (the selection bias is largest there), and their true levels in a science
    frame (ADU)."""
    rng = np.random.default_rng(seed)
    lev_c = 90.0 * np.exp(0.5 * rng.standard_normal(n_cand))              # e- per exposure
    lev_s = 90.0 * np.exp(1.0 + 0.3 * rng.standard_normal(n_spec))
    dbl_c = 6.5 + 0.4 * rng.standard_normal(n_cand)
    dbl_s = 6.5 + 0.4 * rng.standard_normal(n_spec)
    temps = 1.5 * np.sin(np.linspace(0.0, 6.0, n_darks)) + 0.2 * rng.standard_normal(n_darks)

    def expose(level, doubling):
        e = level[:, None] * 2.0 ** (temps[None, :] / doubling[:, None])
        return np.rint((rng.poisson(e) + READ * rng.standard_normal(e.shape)) / GAIN)

    spec, cand = expose(lev_s, dbl_s), expose(lev_c, dbl_c)
    centre = np.median(np.concatenate([spec, cand]), axis=0)
    t_sci = 0.3
    truth_s = lev_s * 2.0 ** (t_sci / dbl_s) / GAIN
    truth_c = lev_c * 2.0 ** (t_sci / dbl_c) / GAIN
    sigma = np.sqrt(truth_s / GAIN + (READ / GAIN) ** 2)
    _skewed_set.temperatures = temps
    return (spec - centre).astype(np.float32), (cand - centre).astype(np.float32), truth_s, \
        truth_c, sigma


def _mean_error(index, offsets, truth_s, truth_c, sigma):
    """Mean over pixels of (noise-free proxies' background - true background) / noise."""
    ok = index >= 0
    est = np.nanmean(np.where(ok, truth_c[np.where(ok, index, 0)] + offsets, np.nan), axis=1)
    return float(np.mean((est - truth_s) / sigma))


def test_dark_halves_interleave():
    a, b = dark_halves(7)
    assert a.tolist() == [0, 2, 4, 6] and b.tolist() == [1, 3, 5]


def test_cross_fitted_offsets_are_measured_on_the_other_half():
    spec, cand, *_ = _skewed_set(n_spec=40, n_cand=800, n_darks=20)
    halves = dark_halves(20)
    sets = [CandidateSet(np.ascontiguousarray(cand[:, h])) for h in halves]
    out = cross_fit_block(spec, lambda s, h: match_block(s, sets[h], **MATCH), sets, halves, 5)
    assert out.index.shape == (40, 32)
    chosen_a = match_block(np.ascontiguousarray(spec[:, halves[0]]), sets[0], **MATCH)
    assert np.array_equal(out.index[:, :16], chosen_a.index)
    i, k = np.nonzero(out.index[:, :16] >= 0)
    _, med, std, n = pair_statistics(spec[:, halves[1]], cand[:, halves[1]], i, out.index[i, k])
    assert np.allclose(out.median[i, k], med) and np.allclose(out.std[i, k], std)
    assert np.all(out.n_samples[i, k] == n)
    med2, _, _ = half_statistics(spec[:, halves[0]], sets[0], out.index[:, 16:])
    assert np.allclose(out.median[:, 16:], med2, equal_nan=True)


def test_skewed_levels_background_mean_error_below_two_percent_of_the_noise():
    spec, cand, truth_s, truth_c, sigma = _skewed_set()
    # Proxies and offsets from the same darks (stage 1 today): biased.
    in_sample = match_block(spec, CandidateSet(cand), **MATCH)
    biased = _mean_error(in_sample.index, in_sample.median, truth_s, truth_c, sigma)
    assert biased < -0.02                                        # measured -0.032
    halves = dark_halves(spec.shape[1])
    sets = [CandidateSet(np.ascontiguousarray(cand[:, h])) for h in halves]
    out = cross_fit_block(spec, lambda s, h: match_block(s, sets[h], **MATCH), sets, halves, 5)
    assert abs(_mean_error(out.index, out.median, truth_s, truth_c, sigma)) < 0.02   # -0.003


@pytest.mark.parametrize("level_e", [30.0, 90.0])
def test_the_clipped_mean_of_skewed_proxy_values_is_unbiased(level_e):
    rng = np.random.default_rng(11)
    values = rng.poisson(level_e, size=(200000, 16)) / GAIN \
        + READ / GAIN * rng.standard_normal((200000, 16))
    noise = np.sqrt(level_e / GAIN ** 2 + (READ / GAIN) ** 2)
    bias = {clip: (combine_proxies(values, "clipped_mean", clip)[0].mean() - level_e / GAIN) / noise
            for clip in (3.0, CLIP_SIGMA)}
    assert bias[3.0] < -0.005                                    # the long side clipped more
    assert abs(bias[CLIP_SIGMA]) < 0.5 * abs(bias[3.0])


def test_offset_temperature_coefficient_recovers_the_doubling_temperature():
    spec, cand, *_ = _skewed_set(n_spec=800, n_cand=6000, n_darks=40, seed=3)
    temps = _skewed_set.temperatures
    halves = dark_halves(40)
    sets = [CandidateSet(np.ascontiguousarray(cand[:, h])) for h in halves]
    out = cross_fit_block(spec, lambda s, h: match_block(s, sets[h], **MATCH), sets, halves, 5)
    beta = offset_temperature_coefficient(spec, sets, out, temps, halves)
    assert beta == pytest.approx(np.log(2) / 6.5, rel=0.15)
    assert offset_scale(beta, [np.nan, 1.0], 0.0).tolist() == [1.0, 1.0 + beta]


def test_uneven_halves_and_the_choosing_medians_as_instrument():
    """Stage 1's way: ceil(K/2) chosen on half A, floor(K/2) on B, the instrument taken from
    the choosing halves' own matches instead of being recomputed."""
    spec, cand, *_ = _skewed_set(n_spec=300, n_cand=3000, n_darks=21, seed=4)
    temps = _skewed_set.temperatures
    halves = dark_halves(21)
    sets = [CandidateSet(np.ascontiguousarray(cand[:, h])) for h in halves]
    chosen = {}

    def choose(s, h):
        chosen[h] = match_block(s, sets[h], **dict(MATCH, proxy_count=(3, 2)[h]))
        return chosen[h]
    out = cross_fit_block(spec, choose, sets, halves, 5)
    assert out.index.shape == (300, 5)
    assert np.array_equal(out.index[:, :3] >= 0, chosen[0].index >= 0)
    assert (out.n_samples[:, :3][out.index[:, :3] >= 0] == 10).all()      # odd darks: 10
    assert (out.n_samples[:, 3:][out.index[:, 3:] >= 0] == 11).all()      # even darks: 11
    given = offset_temperature_sums(spec, sets, out, temps, halves, split=3,
                                    instrument=np.hstack([chosen[0].median, chosen[1].median]))
    assert np.allclose(given, offset_temperature_sums(spec, sets, out, temps, halves, split=3),
                       rtol=1e-9)


def test_proxies_first_closes_the_gaps_in_order():
    index = np.array([[-1, 4, -1, 7], [2, 3, 5, 6], [-1, -1, -1, -1]])
    score = np.where(index >= 0, index / 10.0, np.nan)
    out = proxies_first(MatchResult(index, score, score + 1, score + 2,
                                    np.where(index >= 0, index, 0).astype(np.int32)))
    assert out.index.tolist() == [[4, 7, -1, -1], [2, 3, 5, 6], [-1, -1, -1, -1]]
    assert np.allclose(out.median[0, :2], [1.4, 1.7]) and np.isnan(out.std[0, 2:]).all()
    assert out.n_samples[0].tolist() == [4, 7, 0, 0]
