"""The profile that follows each frame (science/trace_profile.py) and the template's share of
never-usable pixels (science/extraction.py): pure science, no MPI."""

import warnings

import numpy as np
import pytest

from proxy_pixel_pipeline.science import extraction as ex
from proxy_pixel_pipeline.science import trace_profile as tp

NY, NX = 64, 120
GAIN = 1.5


def _truth(n_frames, sigma_scale=None, smear=None, offset=None, seed=1, half_width=None):
    """Noiseless frames of a double-Gaussian trace (peaks 4-7 rows apart, sigma 2.8-3.2 rows
    along the columns), each with its own offset and width; the region and column fluxes."""
    rng = np.random.default_rng(seed)
    x = np.arange(NX, dtype=float)
    y = np.arange(NY, dtype=float)[:, None]
    centre = 31.0 + 0.02 * (x - NX / 2)
    sep = 4.0 + 3.0 * x / (NX - 1)
    sigma = 2.8 + 0.4 * x / (NX - 1)
    flux = 2000.0 * (1.0 + 0.5 * np.sin(x / 9.0))
    offset = rng.uniform(-0.4, 0.4, n_frames) if offset is None else np.asarray(offset, float)
    scale = np.ones(n_frames) if sigma_scale is None else np.asarray(sigma_scale, float)
    smear = np.zeros(n_frames) if smear is None else np.asarray(smear, float)
    region = np.abs(y - centre) <= (half_width or 22)
    profiles = []
    for k in range(n_frames):
        s = np.hypot(sigma * scale[k], smear[k])
        c = centre + offset[k]
        s2 = np.hypot(1.1 * sigma * scale[k], smear[k])
        # Each peak keeps its integral (a smear is a convolution).
        p = (np.exp(-0.5 * ((y - c + sep / 2) / s) ** 2) / s
             + 0.85 * np.exp(-0.5 * ((y - c - sep / 2) / s2) ** 2) / s2)
        # With a half width given, light beyond the aperture stays in the frame.
        profiles.append(ex.normalise_profile(p, region if half_width is None else y >= 0))
    profiles = np.array(profiles)
    return profiles * flux, profiles, flux, region, offset


def _extract(data, usable, region, offsets=None, filled=True, passes=2, spill=False):
    """follow_frames + optimal extraction, as stage 6 would run them."""
    err = np.full(data.shape, 3.0)
    if offsets is None:
        c, f = ex.column_centroids(np.where(usable, data, 0.0), region)
        offsets = ex.trace_offsets(c, f)
    template, shape = tp.follow_frames(data if filled else np.where(usable, data, np.nan), err,
                                       usable, region, smooth=25, offset=offsets, passes=passes)
    warp = tp.TemplateWarp(template, region, spill=spill)
    fluxes = []
    for k in range(len(data)):
        profile = tp.frame_profile(template, region, shape, k, warp)
        fluxes.append(ex.optimal_extract(data[k], err[k], profile, usable[k], GAIN).flux)
    return np.array(fluxes), shape


def test_never_usable_tenth_of_the_trace_keeps_its_share():
    data, _, flux, region, _ = _truth(8)
    rng = np.random.default_rng(5)
    missing = region & (rng.random(region.shape) < 0.1)          # the same pixels in every frame
    usable = np.broadcast_to(region & ~missing, data.shape)
    # Stage 5 infills the never-usable pixels from each frame's model: here their true values.
    fluxes, _ = _extract(data, usable, region)
    assert np.max(np.abs(fluxes / flux - 1)) < 1e-3
    # The series template of extraction.py (stage 6 today): without the infilled values
    # those pixels get no share, and the flux is that of the other pixels only (as on the
    # wasp189b preset, -7 %); with them, the true flux.
    still, _, flux, region, _ = _truth(8, offset=np.zeros(8))
    err = np.full(still.shape[1:], 3.0)
    aligned = np.where(usable, still, np.nan)
    for filled in (None, still):
        template = ex.build_template(aligned, region, 25, filled=filled)
        got = np.array([ex.optimal_extract(d, err, ex.profile_for_frame(template, 0.0, region),
                                           u, GAIN).flux for d, u in zip(still, usable)])
        if filled is None:
            assert got.sum() / flux.sum() / len(got) - 1 < -0.01      # -1.7 %
        else:
            assert np.max(np.abs(got / flux - 1)) < 1e-3


def test_build_template_fills_never_usable_pixels_from_the_infilled_values():
    _, profiles, _, region, _ = _truth(5, offset=np.zeros(5))
    missing = np.zeros(region.shape, bool)
    missing[30, :] = True                                          # a core row, never downlinked
    aligned = np.where(missing, np.nan, profiles)
    filled = ex.build_template(aligned, region, smooth=1, filled=profiles)
    old = ex.build_template(aligned, region, smooth=1)
    assert np.allclose(filled, profiles[0], atol=1e-9)
    assert np.all(old[30] == 0) and np.all(old.sum(axis=0)[region.any(axis=0)] > 0.99)


@pytest.mark.parametrize("kind, tolerance", [("smear", 1e-3), ("focus", 2e-3)])
def test_frames_whose_width_changes_by_30_percent(kind, tolerance):
    n = 8
    widths = np.random.default_rng(2).permutation(np.linspace(1.0, 1.3, n))
    if kind == "smear":       # pointing jitter: each peak convolved, separation kept
        data, _, flux, region, _ = _truth(n, smear=2.8 * np.sqrt(widths ** 2 - 1.0))
    else:
        # A change of focus: every sigma scaled.  The two peaks (widths in ratio 1.1) then
        # widen by different variances, which no single smear is: 0.16 % at most.
        data, _, flux, region, _ = _truth(n, sigma_scale=widths)
    usable = np.broadcast_to(region, data.shape)
    fluxes, shape = _extract(data, usable, region)
    assert np.max(np.abs(fluxes / flux - 1)) < tolerance
    # The fitted width follows the frames' (a systematics regressor for stage 7).
    assert np.corrcoef(shape.width, widths)[0, 1] > 0.999
    assert shape.shrink[0] > 0.99


def test_frames_much_narrower_than_most_keep_their_flux():
    # Pointing jitter's smear is log-normal over frames: a few frames barely smeared
    # (0.2-0.6 rows) among many smeared by 2.5-3.5.  A narrowing's gain is capped, so a
    # frame much narrower than the template got a profile too wide and a flux too high
    # (+0.4 to +0.5 % with the template from the narrower half of the frames); from the
    # narrowest third, the narrow frames need no narrowing and every frame is exact.
    n = 12
    rng = np.random.default_rng(3)
    smear = np.concatenate([rng.uniform(0.2, 0.6, 4), rng.uniform(2.5, 3.5, 8)])
    data, _, flux, region, _ = _truth(n, smear=smear)
    usable = np.broadcast_to(region, data.shape)
    fluxes, shape = _extract(data, usable, region)
    white = fluxes.sum(axis=1) / flux.sum() - 1
    assert np.max(np.abs(white)) < 1e-3, white
    assert np.corrcoef(shape.width, smear ** 2)[0, 1] > 0.99


def test_noisy_frames_much_wider_than_the_template_keep_their_flux():
    # A template of a barely smeared frame (0.3 rows), frames smeared by 2.5-3.5 rows with
    # noise 3 ADU (peaks ~100 ADU).  Outliers were clipped after one damped step, against
    # a model still far too narrow: the pixels the noise pushed furthest were dropped and
    # the frames fitted 0.55 rows**2 too narrow, their flux -0.21 %.  Clipped once the fit
    # has converged: +0.004 % (the frames' own scatter 0.057 %, 15 frames).
    n = 16
    rng = np.random.default_rng(8)
    smear = np.concatenate([[0.3], rng.uniform(2.5, 3.5, n - 1)])
    data, _, flux, region, _ = _truth(n, smear=smear)
    noisy = data + rng.normal(0.0, 3.0, data.shape)
    usable = np.broadcast_to(region, data.shape)
    err = np.full(data.shape, 3.0)
    template = tp.series_template(data[:1], usable[:1], region, smooth=25)
    shape = tp.fit_trace_shape(noisy, err, usable, template, region)
    warp = tp.TemplateWarp(template, region)
    got = np.array([ex.optimal_extract(noisy[k], err[k], tp.frame_profile(template, region,
                                                                          shape, k, warp),
                                       usable[k], GAIN).flux for k in range(n)])
    white = got.sum(axis=1) / flux.sum() - 1
    assert abs(white[1:].mean()) < 4e-4, white[1:].mean()
    assert abs(np.mean(shape.smear[1:, 0] - (smear[1:] ** 2 - 0.3 ** 2))) < 0.15


def test_the_light_a_moved_or_smeared_trace_carries_past_the_aperture_is_counted():
    # An aperture of +-12 rows around a trace 2.8-3.2 rows wide, moved by up to a row and
    # smeared by up to 2.5 rows: a frame keeps 98.9-99.8 % of its light inside.
    n = 10
    rng = np.random.default_rng(4)
    data, _, flux, region, _ = _truth(n, smear=rng.uniform(0.0, 2.5, n),
                                      offset=rng.uniform(-1.0, 1.0, n), half_width=12)
    inside = np.where(region, data, 0.0).sum(axis=(1, 2)) / flux.sum()
    usable = np.broadcast_to(region, data.shape)
    kept, _ = _extract(data, usable, region)
    counted, _ = _extract(data, usable, region, spill=True)
    kept, counted = kept.sum(axis=1) / flux.sum(), counted.sum(axis=1) / flux.sum()
    # Without: the flux inside the aperture, frame by frame.
    assert np.max(np.abs(kept / inside - 1)) < 2e-3
    # With: the light carried out counted to first order (the template, made of light inside
    # the aperture, knows the light that leaves it, not the tails that come in): the frames'
    # spread 0.32 % -> 0.09 %, and closer to all of it.
    assert np.std(counted) < 0.4 * np.std(inside), (np.std(counted), np.std(inside))
    assert abs(counted.mean() - 1) < abs(inside.mean() - 1)


def test_offsets_are_measured_to_a_hundredth_of_a_row():
    offset = np.linspace(-0.8, 0.8, 6)
    data, _, _, region, _ = _truth(6, offset=offset)
    usable = np.broadcast_to(region, data.shape)
    template = tp.series_template(data, usable, region, smooth=25)
    shape = tp.fit_trace_shape(data, np.full(data.shape, 3.0), usable, template, region)
    rel = shape.offset - np.mean(shape.offset)
    assert np.max(np.abs(rel - (offset - offset.mean()))) < 0.01
    assert np.all(np.abs(shape.tilt) < 0.01)


def test_a_width_that_does_not_change_is_not_fitted_to_the_noise():
    rng = np.random.default_rng(9)
    data, _, flux, region, _ = _truth(12)
    err = np.full(data.shape, 8.0)
    noisy = data + np.sqrt(err ** 2 + data / GAIN) * rng.standard_normal(data.shape)
    usable = np.broadcast_to(region, data.shape)
    _, free = tp.follow_frames(noisy, err, usable, region, smooth=25, shrink=False)
    shape = tp.shrink_smear(free)
    assert shape.shrink[0] < 0.5
    assert np.std(shape.width) < 0.7 * np.std(free.width)
    # With the width changing, the frames keep theirs.
    widths = np.linspace(1.0, 1.3, 12)
    data2, _, _, _, _ = _truth(12, smear=2.8 * np.sqrt(widths ** 2 - 1.0))
    noisy2 = data2 + np.sqrt(err ** 2 + data2 / GAIN) * rng.standard_normal(data2.shape)
    _, shape2 = tp.follow_frames(noisy2, err, usable, region, smooth=25)
    assert shape2.shrink[0] > 0.9
    assert np.corrcoef(shape2.width, widths)[0, 1] > 0.99


def test_shift_columns_is_exact_for_a_smooth_profile():
    _, profiles, _, region, _ = _truth(2, offset=[0.0, 0.37])
    moved = tp.shift_columns(profiles[0], 0.37)
    assert np.max(np.abs(moved - profiles[1])) < 1e-4 * profiles.max()


def test_nanmedian_frames_matches_numpy():
    rng = np.random.default_rng(4)
    for n in (6, 7):
        a = rng.normal(size=(n, 30, 20))
        a[rng.random(a.shape) < 0.3] = np.nan
        a[:, 0, 0] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanmedian(a, axis=0)
        assert np.allclose(ex.nanmedian_frames(a), expected, equal_nan=True)
