"""Proxy matching kernels against a straightforward reference."""

import numpy as np
import pytest

from proxy_pixel_pipeline.science.matching import (CandidateSet, estimate_work, match_block,
                                                   pair_statistics, reference_match)
from proxy_pixel_pipeline.science.matching import kernels as match_kernels


def integer_series(seed=7, n_d=31, n_s=48, n_c=3000, missing=0.01):
    """Dark series in whole ADU (as CCD data are): residual medians tie at exactly 0."""
    rng = np.random.default_rng(seed)
    level, slope = rng.normal(0, 30, n_c), rng.normal(0, 3, n_c)
    temp = rng.normal(0, 1, n_d)
    cand = np.round(level[:, None] + slope[:, None] * temp + rng.normal(0, 4, (n_c, n_d)))
    pick = rng.choice(n_c, n_s, replace=False)
    spec = np.round(level[pick, None] + slope[pick, None] * temp + rng.normal(0, 4, (n_s, n_d)))
    cand[rng.random(cand.shape) < missing] = np.nan
    spec[rng.random(spec.shape) < missing] = np.nan
    return spec.astype(np.float32), cand.astype(np.float32)


@pytest.fixture
def series():
    rng = np.random.default_rng(3)
    n_d, n_s, n_c = 30, 40, 2500
    level, slope = rng.normal(0, 300, n_c), rng.normal(0, 50, n_c)
    temp = rng.normal(0, 1, n_d)
    cand = level[:, None] + slope[:, None] * temp + rng.normal(0, 1, (n_c, n_d))
    twin = rng.choice(n_c, n_s, replace=False)
    spec = level[twin, None] + slope[twin, None] * temp + rng.normal(0, 1, (n_s, n_d))
    cand[rng.random(cand.shape) < 0.02] = np.nan
    spec[rng.random(spec.shape) < 0.03] = np.nan
    return spec.astype(np.float32), cand.astype(np.float32), twin


@pytest.mark.parametrize("method, mode", [("lsq", "fast"), ("median", "exact")])
def test_exact_methods_equal_reference(series, method, mode):
    spec, cand, _ = series
    result = match_block(spec, CandidateSet(cand, chunk=700), method=method, median_mode=mode)
    np.testing.assert_array_equal(result.index[:, 0], reference_match(spec, cand, method))


def test_lsq_finds_planted_twins(series):
    spec, cand, twin = series
    result = match_block(spec, CandidateSet(cand), method="lsq")
    assert np.mean(result.index[:, 0] == twin) > 0.9


def test_proxy_count_keeps_k_best_in_order(series):
    spec, cand, _ = series
    cs = CandidateSet(cand)
    one = match_block(spec, cs, method="lsq")
    four = match_block(spec, cs, method="lsq", proxy_count=4)
    np.testing.assert_array_equal(four.index[:, 0], one.index[:, 0])
    assert np.all(np.diff(four.score, axis=1) >= 0)
    assert len({tuple(row) for row in np.sort(four.index, 1)}) == len(spec)


def test_pair_statistics_match_numpy(series):
    spec, cand, _ = series
    i, j = np.arange(10), np.arange(10) * 7
    lsq, med, std, n = pair_statistics(spec, cand, i, j)
    r = spec[i].astype(np.float64) - cand[j]
    np.testing.assert_allclose(med, np.nanmedian(r, 1))
    np.testing.assert_allclose(std, np.nanstd(r, 1))
    np.testing.assert_allclose(lsq, np.nanmean(r ** 2, 1))
    np.testing.assert_array_equal(n, np.count_nonzero(~np.isnan(r), 1))


def test_result_independent_of_chunking(series):
    spec, cand, _ = series
    a = match_block(spec, CandidateSet(cand, chunk=64), method="median")
    b = match_block(spec, CandidateSet(cand, chunk=100000), method="median")
    np.testing.assert_array_equal(a.index, b.index)


def test_pairs_with_too_few_common_samples_are_ignored():
    rng = np.random.default_rng(0)
    spec = rng.normal(0, 1, (1, 20)).astype(np.float32)
    cand = np.vstack([spec + 0.01, spec + 5]).astype(np.float32)
    cand[0, :15] = np.nan                     # the perfect twin has only 5 common samples
    result = match_block(spec, CandidateSet(cand), method="lsq", min_samples=10)
    assert result.index[0, 0] == 1


@pytest.mark.parametrize("n_darks", [30, 31])          # even and odd sample counts
def test_exact_median_on_integer_data_equals_reference(n_darks):
    spec, cand = integer_series(n_d=n_darks)
    result = match_block(spec, CandidateSet(cand, chunk=512), method="median",
                         median_mode="exact")
    np.testing.assert_array_equal(result.index[:, 0], reference_match(spec, cand, "median"))


def test_exact_median_keeps_k_best_in_order():
    spec, cand = integer_series(n_s=24)
    result = match_block(spec, CandidateSet(cand, chunk=700), method="median",
                         median_mode="exact", proxy_count=4)
    np.testing.assert_array_equal(result.index, reference_match(spec, cand, "median", proxy_count=4))
    assert np.all(np.diff(result.std, axis=1) >= 0)


def test_lsq_keeps_k_best_like_reference():
    spec, cand = integer_series(n_s=24, seed=9)
    result = match_block(spec, CandidateSet(cand, chunk=333), method="lsq", proxy_count=3)
    np.testing.assert_array_equal(result.index, reference_match(spec, cand, "lsq", proxy_count=3))


def test_fast_median_with_every_candidate_prefiltered_equals_exact():
    spec, cand = integer_series(n_s=16, n_c=600)
    cs = CandidateSet(cand, chunk=256)
    exact = match_block(spec, cs, method="median", median_mode="exact")
    fast = match_block(spec, cs, method="median", median_mode="fast", prefilter_count=len(cand))
    np.testing.assert_array_equal(fast.index, exact.index)
    np.testing.assert_array_equal(fast.std, exact.std)


@pytest.mark.parametrize("method, mode", [("lsq", "fast"), ("median", "exact"),
                                          ("median", "fast")])
def test_same_result_with_and_without_numba(monkeypatch, method, mode):
    if match_kernels.BACKEND != "numba":
        pytest.skip("numba not installed")
    spec, cand = integer_series(n_s=32, missing=0.03)
    runs = []
    for name in ("numba", "numpy"):
        for kernel, function in match_kernels.implementation(name)._asdict().items():
            if kernel != "name":
                monkeypatch.setattr(match_kernels, kernel, function)
        runs.append(match_block(spec, CandidateSet(cand, chunk=1000), method=method,
                                median_mode=mode, proxy_count=2))
    for field in ("index", "score", "median", "std", "n_samples"):
        np.testing.assert_array_equal(getattr(runs[0], field), getattr(runs[1], field),
                                      err_msg=field)


@pytest.mark.parametrize("method", ["lsq", "median"])
def test_result_independent_of_chunking_and_block_split(method):
    spec, cand = integer_series(n_s=20)
    a = match_block(spec, CandidateSet(cand, chunk=64), method=method, median_mode="exact")
    b = match_block(spec, CandidateSet(cand, chunk=100000), method=method, median_mode="exact")
    np.testing.assert_array_equal(a.index, b.index)
    halves = [match_block(part, CandidateSet(cand), method=method, median_mode="exact")
              for part in (spec[:7], spec[7:])]
    np.testing.assert_array_equal(np.concatenate([h.index for h in halves]), a.index)


def test_window_median_matches_numpy():
    if match_kernels.BACKEND != "numba":
        pytest.skip("numba not installed")
    import numba

    from proxy_pixel_pipeline.science.matching import kernels_numba

    @numba.njit
    def medians(s, c, taus, out):
        buf = np.empty(s.shape[1])
        for p in range(len(s)):
            out[p] = kernels_numba.median_near(s[p], c[p], taus[p], buf)
            if out[p] != out[p]:
                out[p] = kernels_numba.median_of(s[p], c[p], buf)

    rng = np.random.default_rng(4)
    for d in (1, 2, 7, 30, 31):
        s = np.round(rng.normal(0, 2, (3000, d)) * 2) / 2
        c = (np.round(rng.normal(0, 2, (3000, d)) * 2) / 2).astype(np.float32)
        s[rng.random(s.shape) < 0.1] = np.nan
        taus = rng.choice([0.0, 0.5, 2.0, np.inf], len(s))
        out = np.empty(len(s))
        medians(s, c, taus, out)
        with np.errstate(all="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")
            expected = np.nanmedian(s - c.astype(np.float64), axis=1)
        np.testing.assert_array_equal(out, expected)


def test_estimate_work_charges_pixels_with_missing_samples():
    spec = np.zeros((3, 5), np.float32)
    spec[1, 2] = np.nan
    work = estimate_work(spec, 100)
    assert work.shape == (3,) and work[1] > work[0] == work[2] > 0


def test_candidate_set_in_place_gives_same_result():
    spec, cand = integer_series(n_s=12, missing=0.02)
    copied = match_block(spec, CandidateSet(cand, chunk=500), method="median")
    work = cand.copy()
    in_place = match_block(spec, CandidateSet(work, chunk=500, copy=False), method="median")
    np.testing.assert_array_equal(in_place.index, copied.index)
    np.testing.assert_array_equal(in_place.std, copied.std)
