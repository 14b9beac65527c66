"""Tests of proxy_pixel_pipeline.science.infill (infill and cosmic-ray removal).

The cosmic-ray tests use a smooth CUTE-like double-Gaussian trace (peaks of
400 and 500 ADU, widths 2.5 and 3 px) with the noise of ``error_model``
(gain 1.5 e-/ADU, 4 ADU background noise), NaN outside a 30-row band, and
planted hits of 15-60 sigma: single pixels and short streaks.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from proxy_pixel_pipeline.science.cosmic_rays import remove_cosmic_rays
from proxy_pixel_pipeline.science.infill import infill
from proxy_pixel_pipeline.science.noise import error_model
from proxy_pixel_pipeline.science.profiles import double_gaussian

GAIN = 1.5          # e-/ADU
BACKGROUND_NOISE = 4.0  # ADU


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ---------------------------------------------------------------- infill

@pytest.fixture
def holey_frame(rng):
    frame = rng.uniform(1, 100, (20, 30)).astype(np.float32)
    frame[rng.random(frame.shape) < 0.1] = np.nan
    frame[rng.random(frame.shape) < 0.1] = -5.0
    region = np.zeros(frame.shape, bool)
    region[5:15, :] = True
    return frame, region


def test_infill_fills_nan_and_negative_in_region_only(holey_frame):
    frame, region = holey_frame
    before = frame.copy()
    model = np.full(frame.shape, 7.0)
    filled, mask = infill(frame, model, region=region)
    assert_array_equal(frame, before)          # input unchanged
    assert filled.dtype == np.float32
    expected = region & (np.isnan(frame) | (frame < 0))
    assert expected.any() and (~region & np.isnan(frame)).any()
    assert_array_equal(mask, expected)
    assert np.all(filled[mask] == 7.0)
    assert_array_equal(filled[~mask], frame[~mask])   # (NaN compares equal here)
    assert np.all(np.isfinite(filled[region])) and np.all(filled[region] >= 0)
    assert_array_equal(np.isnan(filled[~region]), np.isnan(frame[~region]))


def test_infill_options(holey_frame):
    frame, region = holey_frame
    model = np.full(frame.shape, 7.0)
    filled, mask = infill(frame, model, fill_negative=False)   # region: everywhere
    assert_array_equal(mask, np.isnan(frame))
    assert not np.isnan(filled).any()
    assert np.all(filled[frame < 0] == -5.0)
    model[:, :3] = np.nan                     # a failed bin: nothing to fill with
    filled, mask = infill(frame, model, region=region)
    assert not mask[:, :3].any()
    assert_array_equal(filled[:, :3], frame[:, :3])
    with pytest.raises(ValueError):
        infill(frame, model[:, :5])


# ---------------------------------------------------------------- error model

def test_error_model():
    signal = np.array([-10.0, 0.0, 150.0, np.nan])
    e = error_model(signal, BACKGROUND_NOISE, GAIN)
    assert_allclose(e[:3], [4.0, 4.0, np.sqrt(150 / 1.5 + 16)])
    assert np.isnan(e[3])
    assert_allclose(error_model(100.0, np.array([3.0, 0.0]), 2.0), [np.sqrt(59), np.sqrt(50)])
    with pytest.raises(ValueError):
        error_model(signal, 4.0, 0.0)


# ---------------------------------------------------------------- cosmic rays

@pytest.fixture
def trace():
    """Smooth tilted double-Gaussian trace, its noise, and the band region."""
    ny, nx = 60, 400
    y = np.arange(ny)[:, None]
    x = np.arange(nx)[None, :]
    centre = 30 + 0.01 * x
    truth = double_gaussian(y, 400.0, centre - 3, 2.5, 500.0, centre + 3, 3.0, 0.0)
    region = np.abs(y - centre) < 15
    error = error_model(truth, BACKGROUND_NOISE, GAIN)
    return truth, error, region


def _plant_cosmic_rays(image, error, rng):
    """Single-pixel hits and short streaks of 15-60 sigma; returns their mask."""
    ny, nx = image.shape
    hits = np.zeros(image.shape, bool)
    ys, xs = rng.integers(0, ny, 40), rng.integers(0, nx, 40)
    hits[ys, xs] = True
    for _ in range(8):   # streaks 3-7 pixels long, horizontal or diagonal
        y0, x0 = rng.integers(20, 40), rng.integers(10, 380)
        length, slope = rng.integers(3, 8), rng.integers(-1, 2)
        j = np.arange(length)
        hits[y0 + (j * slope) // 2, x0 + j] = True
    image = image + hits * rng.uniform(15, 60, image.shape) * error
    return image, hits


def test_remove_cosmic_rays_finds_planted_hits(trace, rng):
    truth, error, region = trace
    noisy = truth + rng.normal(size=truth.shape) * error
    image, hits = _plant_cosmic_rays(noisy, error, rng)
    frame = np.where(region, image, np.nan)
    hits &= region
    before = frame.copy()

    cleaned, cr_mask = remove_cosmic_rays(frame, error, region=region)

    assert_array_equal(frame, before)
    found = cr_mask & hits
    assert found.sum() >= 0.95 * hits.sum()                   # recall
    assert (cr_mask & ~hits).sum() <= 0.002 * region.sum()    # false positives
    assert not cr_mask[~region].any()
    assert np.all(np.isnan(cleaned[~region]))
    assert np.all(np.isfinite(cleaned[region]))
    # Cleaned pixels are back near the trace (a 5x5 median: within a few
    # sigma, the median smooths the trace's curvature a little).
    assert np.all(np.abs(cleaned[found] - truth[found]) < 6 * error[found])
    assert_array_equal(cleaned[~cr_mask & region], frame[~cr_mask & region])


def test_remove_cosmic_rays_clean_frame_and_holes(trace, rng):
    """No hits: (almost) nothing found, the bright trace is never flagged;
    NaN holes inside the region stay NaN and create no detections."""
    truth, error, region = trace
    frame = np.where(region, truth + rng.normal(size=truth.shape) * error, np.nan)
    holes = region & (rng.random(frame.shape) < 0.01)
    frame[holes] = np.nan
    cleaned, cr_mask = remove_cosmic_rays(frame, error, region=region)
    assert cr_mask.sum() <= 0.001 * region.sum()
    assert np.all(np.isnan(cleaned[holes])) and not cr_mask[holes].any()
    # Without region, NaN pixels are simply skipped.
    cleaned2, cr_mask2 = remove_cosmic_rays(frame, error)
    assert cr_mask2.sum() <= 0.001 * region.sum()
    assert_array_equal(np.isnan(cleaned2), np.isnan(frame))


def test_remove_cosmic_rays_bad_error_and_empty_region(trace):
    truth, error, region = trace
    bad_error = error.copy()
    bad_error[::7, ::5] = 0.0
    bad_error[::11, ::3] = np.nan
    cleaned, cr_mask = remove_cosmic_rays(truth, bad_error, region=region)
    assert not cr_mask.any()
    cleaned, cr_mask = remove_cosmic_rays(np.full((10, 10), np.nan), 1.0)
    assert np.all(np.isnan(cleaned)) and not cr_mask.any()
    with pytest.raises(ValueError):
        remove_cosmic_rays(truth, 0.0)


def test_negative_limit_spares_pixels_within_the_noise():
    frame = np.array([[5.0, -1.0, -50.0, np.nan]])
    model = np.full_like(frame, 7.0)
    filled, mask = infill(frame, model, negative_limit=10.0)
    np.testing.assert_array_equal(mask, [[False, False, True, True]])
    np.testing.assert_array_equal(filled, [[5.0, -1.0, 7.0, 7.0]])


@pytest.mark.parametrize("grow", [0, 1])
def test_clean_frame_takes_the_charge_cosmic_rays_share_with_their_neighbours(trace, rng, grow):
    """Hits of 40 sigma share 2 sigma with each of their 8 neighbours (below any threshold):
    with ``grow=1`` the ring takes the series' prediction, flagged COSMIC_GROWN, and the
    trace's sum is unbiased; without it the shared charge stays (about 11 sigma of the sum)."""
    from proxy_pixel_pipeline.flags import DQFlag
    from proxy_pixel_pipeline.science.infill import clean_frame

    truth, error, region = trace
    frame = truth + rng.normal(size=truth.shape) * error
    cores = np.zeros(truth.shape, bool)
    inner = np.argwhere(region[2:-2, 2:-2]) + 2
    picks = inner[rng.choice(len(inner), 100, replace=False)]
    cores[picks[:, 0], picks[:, 1]] = True
    halo = np.zeros_like(cores)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                halo |= np.roll(np.roll(cores, dy, 0), dx, 1)
    halo &= ~cores
    frame = frame + 40 * error * cores + 2 * error * halo
    frame = np.where(region, frame, np.nan)
    z = np.where(region, (frame - truth) / error, np.nan)
    out = clean_frame(frame, truth, z, np.full(truth.shape, BACKGROUND_NOISE),
                      np.zeros(truth.shape, np.uint8), region, gain=GAIN, grow=grow)
    assert out["cosmic"][cores].all()
    grown = (out["dq"] & DQFlag.COSMIC_GROWN) != 0
    assert np.array_equal(grown, out["grown"] != 0)
    sum_error = np.sqrt(np.sum(error[region] ** 2))
    bias = np.sum((out["final"] - truth)[region]) / sum_error
    if grow:
        assert (grown | (out["cosmic"] != 0))[halo & region].all()
        assert not (grown & (out["cosmic"] != 0)).any()
        assert abs(bias) < 3
    else:
        assert not grown.any()
        assert bias > 6
