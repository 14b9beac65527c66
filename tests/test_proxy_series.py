"""Each proxy's value from its series' model (science/proxy_series.py and stage 2)."""

import numpy as np
import pytest
from astropy.io import fits

from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.science.proxy_series import model_proxy_series
from proxy_pixel_pipeline.simulate import simulate

from conftest import run_script, stage2_variant


def _series(seed=1, n_pixels=4000, n_frames=40, n_columns=100):
    """Proxies' true values (level, temperature response, a frame's smooth field) and noisy
    readings (read noise 3 ADU and shot noise, gain 1)."""
    rng = np.random.default_rng(seed)
    level = 100.0 * rng.lognormal(0.0, 0.6, n_pixels)
    t = 0.05 * rng.standard_normal(n_frames)
    u = rng.integers(0, n_columns, n_pixels) / (n_columns - 1) - 0.5     # column, -0.5 .. 0.5
    field = 20.0 + 8.0 * rng.standard_normal(n_frames)
    gradient = 5.0 * rng.standard_normal(n_frames)
    smooth = field[None, :] + gradient[None, :] * u[:, None]
    truth = smooth + level[:, None] * (1.0 + t[None, :] * rng.normal(1.0, 0.2, n_pixels)[:, None])
    sigma = np.sqrt(9.0 + truth)
    noisy = truth + sigma * rng.standard_normal(truth.shape)
    return noisy, truth, smooth, t, sigma, rng


def test_the_model_takes_most_of_the_noise_out_of_every_proxy_value():
    noisy, truth, smooth, t, sigma, _ = _series()
    values, info = model_proxy_series(noisy, smooth, t)
    raw = np.sqrt(np.mean(((noisy - truth) / sigma) ** 2))
    modelled = np.sqrt(np.mean(((values - truth) / sigma) ** 2))
    # Two parameters from 40 frames: sqrt(2/40) = 0.22 of the noise, plus the share kept.
    assert 0.9 < raw < 1.1 and modelled < 0.35, (raw, modelled)
    assert info["own_share"] < 0.15 and not info["coherent"]
    # The frame's sum over the proxies (what reaches the white light) loses its noise too.
    assert np.std((values - truth).sum(axis=0)) < 0.4 * np.std((noisy - truth).sum(axis=0))


def test_dropped_values_are_modelled_and_missing_ones_stay_missing():
    noisy, truth, smooth, t, sigma, rng = _series(seed=2)
    dropped = rng.random(noisy.shape) < 0.01
    noisy[dropped] += 500.0                      # cosmic rays
    noisy[0, 3] = np.nan
    values, _ = model_proxy_series(noisy, smooth, t, dropped)
    assert np.isnan(values[0, 3]) and np.isfinite(values[1:]).all()
    assert np.sqrt(np.mean(((values - truth)[dropped] / sigma[dropped]) ** 2)) < 0.35


def test_a_pixel_the_model_does_not_describe_keeps_its_own_values():
    noisy, truth, smooth, t, sigma, rng = _series(seed=3)
    flicker = np.zeros(noisy.shape)
    flicker[:40] = 3.0 * sigma[:40] * rng.choice([-1.0, 1.0], (40, noisy.shape[1]))
    values, _ = model_proxy_series(noisy + flicker, smooth, t)
    # The flickering pixels follow their own readings, the rest their model.
    err_flicker = np.sqrt(np.mean(((values - truth - flicker)[:40] / sigma[:40]) ** 2))
    err_rest = np.sqrt(np.mean(((values - truth)[40:] / sigma[40:]) ** 2))
    assert err_flicker < 1.2 and err_rest < 0.35, (err_flicker, err_rest)


def test_structure_common_to_many_pixels_that_the_model_lacks_is_reported():
    noisy, truth, smooth, t, sigma, rng = _series(seed=4)
    pattern = 1.0 + np.sin(np.arange(len(noisy)) / 37.0)   # not in the field nor temperature
    common = 0.3 * np.median(sigma) * np.outer(pattern, rng.standard_normal(noisy.shape[1]))
    weights = rng.integers(1, 40, len(noisy))
    _, info = model_proxy_series(noisy + common, smooth, t, weights=weights)
    assert info["coherent"] and info["coherence"] > 2
    _, plain = model_proxy_series(noisy, smooth, t, weights=weights)
    assert not plain["coherent"] and 0.3 < plain["coherence"]   # 40 frames: +-0.22


def test_too_few_frames_leave_the_values_as_read():
    noisy, _, smooth, t, _, _ = _series(n_frames=8)
    values, info = model_proxy_series(noisy, smooth, t, min_frames=10)
    np.testing.assert_array_equal(values, noisy)
    assert info["own_share"] == 1.0


@pytest.fixture(scope="module")
def twenty_frames(tmp_path_factory):
    """Tiny data with 20 science frames and scattered light; stage 2 with the series' model
    (output/) and without (output_off/), the same matches."""
    folder = simulate(tmp_path_factory.mktemp("series") / "data", preset="tiny", seed=11,
                      n_rows=100, n_science=20, scatter_e=60.0, scatter_sigma=0.3, cosmic_rate=0.0)
    config = folder / "config.yaml"
    config.write_text(config.read_text() + "\nproxy_count: 16\n")
    run_script("1_Proxy_Matches.py", "--config", config)
    run_script("2_Frames.py", "--config", config)
    return folder, load_config(config), stage2_variant(folder, "off", "proxy_series_min_frames: 0\n")


def _errors(folder, cfg):
    """Per frame: background - truth on the spectral pixels, and BKG_ERR there."""
    layout = Layout(cfg.output_dir)
    mask = cfg.pixel_list("spectral_mask").astype(bool)
    errors, sigmas = [], []
    for path in cfg.science_paths():
        truth = fits.getdata(folder / "truth" / path.name, "BACKGROUND").astype(float)
        with fits.open(layout.background(path)) as hdul:
            errors.append((hdul[0].data - truth)[mask])
            sigmas.append(hdul["BKG_ERR"].data[mask])
            assert hdul[0].header["PXSERIES"] == (cfg.proxy_series_min_frames > 0)
    return np.array(errors), np.array(sigmas)


def test_stage2_with_the_series_model_has_less_background_noise(twenty_frames):
    folder, on, off = twenty_frames
    err_on, sig_on = _errors(folder, on)
    err_off, _ = _errors(folder, off)
    ok = np.isfinite(err_on).all(axis=0) & np.isfinite(err_off).all(axis=0)
    err_on, err_off, sig_on = err_on[:, ok], err_off[:, ok], sig_on[:, ok]
    # Per pixel (about its mean over the frames) and in the frame's sum.
    def spread(e):
        return np.sqrt(np.mean((e - e.mean(axis=0)) ** 2))
    assert spread(err_on) < 0.6 * spread(err_off), (spread(err_on), spread(err_off))
    assert np.std(err_on.sum(axis=1)) < np.std(err_off.sum(axis=1))
    # The level is not moved: the mean error stays within the noise of its estimate.
    assert abs(err_on.mean() - err_off.mean()) < 3 * spread(err_off) / np.sqrt(err_on.size / 16)
    # BKG_ERR still describes the true error (one pixel's noise enters through the offsets).
    rms = np.sqrt(np.mean(err_on ** 2) / np.mean(sig_on ** 2))
    assert 0.75 < rms < 1.3, rms


def test_stage2_with_the_series_model_same_frames_on_two_ranks(twenty_frames):
    folder, on, _ = twenty_frames
    two = stage2_variant(folder, "two", ranks=2)
    one_layout, two_layout = Layout(on.output_dir), Layout(two.output_dir)
    for path in on.science_paths():
        for ext in (0, "BKG_ERR"):
            np.testing.assert_array_equal(fits.getdata(one_layout.background(path), ext),
                                          fits.getdata(two_layout.background(path), ext))
