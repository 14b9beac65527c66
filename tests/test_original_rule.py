"""``median_candidates: 1`` is the original code's median rule, checked against a transcription.

The original (see ../shared/cute-instrument.md, "The original code's rules"): among all
candidates, those whose |residual median| equals the minimum exactly; of those the smallest
residual standard deviation (``numpy.nanstd``, ddof 0); on a further tie the first candidate
in tag order.  Integer ADU make exact ties common, which is where a rule's details matter.
"""

import numpy as np
import pytest

from proxy_pixel_pipeline.science.matching import CandidateSet, match_block


def original_median_rule(spectral, candidates):
    """The original rule, transcribed literally: one spectral pixel, one candidate at a time."""
    chosen = []
    for s in spectral:
        medians = [abs(np.nanmedian(s - c)) for c in candidates]
        lowest = min(medians)
        tied = [j for j, m in enumerate(medians) if m == lowest]       # exact equality
        stds = [np.nanstd(s - candidates[j]) for j in tied]
        chosen.append(tied[int(np.argmin(stds))])                     # first on a tie
    return np.array(chosen)


def integer_darks(rng, n_spec, n_cand, n_darks, spread, missing=0.0):
    """Integer ADU darks: pixels share a few levels and temperature slopes, so many
    residual medians are exactly 0 (or tie at 0.5, 1, ...) and stds tie too."""
    temps = rng.normal(0.0, 1.0, n_darks)
    n = n_spec + n_cand
    level = rng.integers(0, spread, n)
    slope = rng.choice([0.0, 2.0, 4.0], n)
    noise = rng.integers(-2, 3, (n, n_darks))
    series = (1000 + level[:, None] + np.rint(slope[:, None] * temps) + noise).astype(np.float32)
    series[rng.random(series.shape) < missing] = np.nan
    return series[:n_spec], series[n_spec:]


@pytest.mark.parametrize("seed, spread, n_darks, missing", [
    (0, 4, 20, 0.0),       # many exact zero medians (as on WASP-189b: 97 % of matches)
    (1, 40, 21, 0.0),      # fewer ties, odd number of darks
    (2, 8, 24, 0.03),      # lost samples: medians over different subsets, half-integer ties
])
def test_median_candidates_1_is_the_original_rule(seed, spread, n_darks, missing):
    rng = np.random.default_rng(seed)
    spectral, candidates = integer_darks(rng, 60, 400, n_darks, spread, missing)
    want = original_median_rule(spectral.astype(np.float64), candidates.astype(np.float64))
    got = match_block(spectral, CandidateSet(candidates, chunk=128), method="median",
                      median_candidates=1, min_samples=10).index[:, 0]
    for i, (g, w) in enumerate(zip(got, want)):
        if g == w:
            continue
        # Otherwise an exact twin: the same |median| and std, computed as the original does.
        s = spectral[i].astype(np.float64)
        rg, rw = s - candidates[g].astype(np.float64), s - candidates[w].astype(np.float64)
        assert abs(np.nanmedian(rg)) == abs(np.nanmedian(rw)), i
        assert np.nanstd(rg) == pytest.approx(np.nanstd(rw), rel=1e-12, abs=1e-12), i
    assert np.mean(got == want) > 0.9
