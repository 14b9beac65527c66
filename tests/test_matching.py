"""Proxy matching kernels against a straightforward reference."""

import numpy as np
import pytest

from proxy_pixel_pipeline.matching import CandidateSet, match_block, pair_statistics


def reference(spec, cand, method, k=10, min_samples=10):
    """Loop over spectral pixels with numpy's nan-functions: the seed's rule, literally."""
    out = []
    for s in spec:
        r = s[None].astype(np.float64) - cand
        n = np.count_nonzero(~np.isnan(r), axis=1)
        with np.errstate(all="ignore"):
            if method == "lsq":
                score = np.nanmean(r ** 2, axis=1)
                score[n < min_samples] = np.inf
                out.append(np.argmin(score))
            else:
                med = np.abs(np.nanmedian(r, axis=1))
                std = np.nanstd(r, axis=1)
                med[n < min_samples] = np.inf
                closest = np.lexsort((std, med))[:k]
                out.append(closest[np.argmin(std[closest])])
    return np.array(out)


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
    np.testing.assert_array_equal(result.index[:, 0], reference(spec, cand, method))


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
