"""The proxies' scattered-light error and its correction (science/scattered_light.py, stage 2's
``scattered_light_order``)."""

import numpy as np
import pytest
from astropy.io import fits

from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.science.scattered_light import fit_excess, proxy_correction
from proxy_pixel_pipeline.simulate import simulate

from conftest import run_script, stage2_variant

NOISE = 3.0       # ADU per pixel
K = 8


def _detector(seed, shape=(60, 300), ratio=1.0, scatter=(40.0, 0.4, -0.3)):
    """Dark median, a science frame, the true background, mask and K random far proxies."""
    rng = np.random.default_rng(seed)
    rows, columns = shape
    dark = 1000.0 + rng.lognormal(np.log(30.0), 0.8, shape)     # bias + dark current, ADU
    u = np.arange(columns) / (columns - 1) - 0.5
    v = np.arange(rows)[:, None] / (rows - 1) - 0.5
    level, gx, gy = scatter
    light = level * (1 + gx * u + gy * v)
    truth = 1000.0 + (dark - 1000.0) * ratio + light
    science = truth + NOISE * rng.standard_normal(shape)
    mask = np.zeros(shape, bool)
    mask[25:36] = True
    spectral = np.argwhere(mask)
    candidates = np.argwhere(~mask)
    proxy = candidates[rng.integers(0, len(candidates), (len(spectral), K))]
    # exact offsets (the darks hold no scattered light here): spectral - proxy dark level
    offsets = dark[spectral[:, 0], spectral[:, 1]][:, None] - dark[proxy[..., 0], proxy[..., 1]]

    def background(offset_scale=1.0):
        return (science[proxy[..., 0], proxy[..., 1]] + offsets * offset_scale).mean(axis=1)

    return dark, science, truth, mask, spectral, proxy, background


@pytest.mark.parametrize("ratio", [1.0, 1.3])
def test_correction_removes_the_proxies_scattered_light_and_temperature_error(ratio):
    dark, science, truth, mask, spectral, proxy, background = _detector(1, ratio=ratio)
    error = background() - truth[spectral[:, 0], spectral[:, 1]]
    field = fit_excess(science, dark, ~mask, order=1)
    gx, gy = field.gradients
    # the frame's gradients, edge to edge (40 x 0.4 and 40 x -0.3 ADU), and the temperature
    # slope (the frame's dark current over the darks': ratio - 1), from ~14 000 pixels
    assert gx == pytest.approx(16.0, abs=0.3)
    assert gy == pytest.approx(-12.0, abs=0.3)
    assert field.temperature_slope == pytest.approx(ratio - 1.0, abs=0.005)
    assert field.offset_scale == 1.0 + field.temperature_slope
    corrected = (background(field.offset_scale) - truth[spectral[:, 0], spectral[:, 1]]
                 + proxy_correction(field, spectral, proxy, np.ones(proxy.shape[:2], bool)))
    # before: several ADU per pixel from the proxies' positions; after: their noise only
    per_pixel_noise = NOISE * np.sqrt(1.0 / K)
    assert np.std(error) > 2 * per_pixel_noise
    assert np.std(corrected) == pytest.approx(per_pixel_noise, rel=0.1)
    assert abs(np.mean(corrected)) < 5 * per_pixel_noise / np.sqrt(len(spectral)) + 0.02


def test_no_scattered_light_no_change():
    dark, science, truth, mask, spectral, proxy, background = _detector(2, scatter=(0.0, 0, 0))
    field = fit_excess(science, dark, ~mask, order=1)
    correction = proxy_correction(field, spectral, proxy, np.ones(proxy.shape[:2], bool))
    correction += background(field.offset_scale) - background()     # the offsets scaled
    # the field fitted to noise: its effect far below one pixel's background noise
    assert np.std(correction) < 0.05 * NOISE / np.sqrt(K)
    assert abs(np.sum(correction)) < 0.02 * NOISE * np.sqrt(len(spectral))


def test_invalid_proxies_left_out_and_too_few_pixels_give_none():
    dark, science, truth, mask, spectral, proxy, _ = _detector(3)
    field = fit_excess(science, dark, ~mask, order=2)
    valid = np.zeros(proxy.shape[:2], bool)
    valid[:, 0] = True
    one = proxy_correction(field, spectral, proxy, valid)
    sy, sx = spectral[:, 0], spectral[:, 1]
    py, px = proxy[:, 0, 0], proxy[:, 0, 1]
    # the whole field at equal dark levels: its constant and dark-level term cancel
    expected = field(sy, sx, dark[sy, sx]) - field(py, px, dark[sy, sx])
    np.testing.assert_allclose(one, expected)
    none = proxy_correction(field, spectral, proxy, np.zeros(proxy.shape[:2], bool))
    assert np.all(none == 0)
    few = np.zeros_like(mask)
    few[0, :5] = True
    assert fit_excess(science, dark, few, order=1) is None


@pytest.fixture(scope="module")
def scattered(tmp_path_factory):
    """Tiny data with strong scattered light changing across the frame, stages 1-2 run with the
    correction (output/) and without it (output_off/)."""
    folder = simulate(tmp_path_factory.mktemp("scatter") / "data", preset="tiny", seed=7,
                      scatter_e=300.0, scatter_sigma=0.3, scatter_gradient=0.6, cosmic_rate=0.0)
    config = folder / "config.yaml"
    run_script("1_Proxy_Matches.py", "--config", config)
    run_script("2_Frames.py", "--config", config)
    return folder, load_config(config), stage2_variant(folder, "off", "scattered_light_order: 0\n")


def _trace_errors(folder, cfg):
    layout = Layout(cfg.output_dir)
    out = []
    for path in cfg.science_paths():
        truth = fits.getdata(folder / "truth" / path.name, "BACKGROUND").astype(float)
        background = fits.getdata(layout.background(path)).astype(float)
        out.append((background - truth)[np.isfinite(background)])
    return np.array(out)


def test_stage2_follows_scattered_light_that_the_proxies_do_not_see(scattered):
    folder, on, off = scattered
    err_on, err_off = _trace_errors(folder, on), _trace_errors(folder, off)
    rms_on, rms_off = np.sqrt(np.mean(err_on ** 2)), np.sqrt(np.mean(err_off ** 2))
    assert rms_on < 0.6 * rms_off, (rms_on, rms_off)
    header = fits.getheader(Layout(on.output_dir).background(on.science_paths()[0]))
    assert {"SLGRADX", "SLGRADY", "SLTSLOPE", "SLNFIT"} <= set(header)
    assert "SLGRADX" not in fits.getheader(Layout(off.output_dir).background(off.science_paths()[0]))


def test_candidates_near_the_mask_serve_as_no_proxy(scattered):
    folder, on, _ = scattered
    from scipy.ndimage import distance_transform_edt

    from proxy_pixel_pipeline.flags import PixelFlag
    from proxy_pixel_pipeline.io.products import read_matches

    layout = Layout(on.output_dir)
    spectral, proxy, _ = read_matches(layout.matches)
    mask = on.pixel_list("spectral_mask")
    distance = distance_transform_edt(~mask)
    has = proxy[..., 0] >= 0
    assert has.any()
    assert distance[proxy[..., 0][has], proxy[..., 1][has]].min() > on.candidate_margin
    flags = fits.getdata(layout.matches, "PIXFLAGS")
    near = (flags & PixelFlag.NEAR_MASK) != 0
    assert np.array_equal(near, ~mask & (distance <= on.candidate_margin))
    assert fits.getheader(layout.matches)["NNEARMSK"] == near.sum() > 0
