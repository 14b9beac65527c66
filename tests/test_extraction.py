"""Stage 6's science on synthetic frames: optimal (Horne 1986) and box extraction, the
template profile, light curves and transit depths."""

import numpy as np
import pytest

from proxy_pixel_pipeline.science import extraction as ex
from proxy_pixel_pipeline.science import lightcurves as lc
from proxy_pixel_pipeline.runtime.config import config_from_dict

NY, NX = 30, 80
GAIN = 1.5


def _profile(center=14.3, sigma=1.6, second=None):
    y = np.arange(NY, dtype=float)[:, None]
    p = np.exp(-0.5 * ((y - center) / sigma) ** 2) * np.ones((1, NX))
    if second is not None:
        p = p + 0.7 * np.exp(-0.5 * ((y - center - second) / (1.1 * sigma)) ** 2)
    region = np.abs(y - center) <= 9 + np.zeros((1, NX))
    return ex.normalise_profile(p, region), region


def _frames(n, flux, profile, err, rng):
    signal = flux[..., None, :] * profile
    noise = np.sqrt(err ** 2 + signal / GAIN)
    return signal + noise * rng.standard_normal((n,) + profile.shape), np.full((n,) + profile.shape, err)


def test_noiseless_frame_returns_the_true_flux():
    profile, region = _profile(second=2.5)
    flux = np.linspace(50, 400, NX)
    data = flux[None, :] * profile
    err = np.full(data.shape, 3.0)
    usable = np.ones(data.shape, bool)
    usable[14, 10] = usable[15, 30:33] = False            # missing pixels change nothing
    out = ex.optimal_extract(data, err, profile, usable & region, GAIN)
    assert np.allclose(out.flux, flux, rtol=1e-10)
    assert out.n_rejected.sum() == 0
    box, _ = ex.box_extract(data, err, region, GAIN)
    assert np.allclose(box, flux, rtol=1e-10)


def test_agrees_with_specreduce_horne_extract_within_noise():
    pytest.importorskip("specreduce")
    import astropy.units as u
    from specreduce.extract import HorneExtract
    from specreduce.tracing import FlatTrace

    rng = np.random.default_rng(3)
    profile, region = _profile(center=14.0, sigma=1.6)
    flux = np.full(NX, 300.0)
    data, err = _frames(1, flux, profile, 4.0, rng)
    data, err = data[0], err[0]
    var = err ** 2 + np.maximum(flux * profile, 0) / GAIN
    ours = ex.optimal_extract(data, err, profile, region, GAIN, sigma=100.0)
    theirs = HorneExtract(data, FlatTrace(data, 14.0), variance=var, mask=np.zeros(data.shape, bool),
                          unit=u.DN, spatial_profile="gaussian", bkgrd_prof=None).spectrum
    theirs = np.asarray(theirs.flux.value)
    # Same estimator, profiles fitted vs given: agreement far inside the noise per column.
    assert np.all(np.abs(ours.flux - theirs) < 0.25 * ours.flux_err)
    assert abs(np.mean(ours.flux - theirs)) < 0.05 * np.mean(ours.flux_err)


def test_a_planted_hit_is_rejected_one_at_a_time():
    rng = np.random.default_rng(5)
    profile, region = _profile()
    flux = np.full(NX, 200.0)
    data, err = _frames(1, flux, profile, 3.0, rng)
    data, err = data[0], err[0]
    clean = ex.optimal_extract(data, err, profile, region, GAIN)
    hit = data.copy()
    hit[15, 40] += 400.0                                   # a cosmic ray stage 5 missed
    hit[12, 41] += 150.0
    hit[13, 41] += 300.0                                   # two in one column
    out = ex.optimal_extract(hit, err, profile, region, GAIN, sigma=5.0)
    assert out.rejected[15, 40] and out.rejected[12, 41] and out.rejected[13, 41]
    assert out.n_rejected.sum() <= 3 + clean.n_rejected.sum()
    assert abs(out.flux[40] - clean.flux[40]) < out.flux_err[40]
    assert abs(out.flux[41] - clean.flux[41]) < out.flux_err[41]
    assert out.flags(0.5)[40] & ex.SpectrumFlag.REJECTED


def test_flux_errors_are_calibrated():
    rng = np.random.default_rng(7)
    profile, region = _profile(second=2.0)
    flux = np.linspace(30, 500, NX)
    data, err = _frames(200, flux, profile, 3.0, rng)
    usable = np.broadcast_to(region, data.shape).copy()
    usable[rng.random(data.shape) < 0.03] = False
    out = ex.optimal_extract(data, err, profile, usable, GAIN)
    pull = (out.flux - flux) / out.flux_err
    assert 0.93 < np.std(pull) < 1.07
    assert abs(np.mean(pull)) < 0.05
    box, box_err = ex.box_extract(data, err, region, GAIN)
    assert 0.93 < np.std((box - flux) / box_err) < 1.07
    # Optimal beats box.
    assert np.mean(out.flux_err) < np.mean(box_err)


def test_template_follows_offsets_and_recovers_the_profile():
    rng = np.random.default_rng(9)
    offsets = np.array([0.0, 0.4, -0.3, 0.8, 0.1, -0.6, 0.2, 0.0])
    region = _profile()[1]
    flux = np.full(NX, 400.0)
    frames = []
    for dy in offsets:
        p, _ = _profile(center=14.3 + dy, second=2.0)
        frames.append(_frames(1, flux, p, 2.0, rng)[0][0])
    frames = np.array(frames)
    cen, fl = ex.column_centroids(frames, region)
    measured = ex.trace_offsets(cen, fl)
    assert np.allclose(measured - measured.mean(), offsets - offsets.mean(), atol=0.05)
    aligned = np.array([ex.shift_rows(f, -d) for f, d in zip(frames, measured)])
    template = ex.build_template(aligned, region, smooth=25)
    truth, _ = _profile(center=14.3 + offsets.mean(), second=2.0)
    assert np.abs(template - truth).max() < 0.02
    assert np.allclose(template.sum(axis=0), 1.0, atol=5e-3)     # signed-sum normalisation
    assert (template >= 0).all()
    p3 = ex.profile_for_frame(template, measured[3], region)
    assert np.abs(p3 - _profile(center=14.3 + offsets[3], second=2.0)[0]).max() < 0.03


def _cfg(**kw):
    base = {"dark_frames": "d/*.fits", "science_frames": "s/*.fits", "spectral_mask": "m.fits",
            "output_dir": "out", "proxy_method": "median"}
    return config_from_dict({**base, **kw})


@pytest.mark.parametrize("model", ["box", "batman"])
def test_depths_recover_an_injected_depth(model):
    rng = np.random.default_rng(11)
    t = 60000.0 + np.arange(120) * 330 / 86400
    mid = t[60]
    if model == "box":
        cfg = _cfg(transit_model="box", transit_mid=float(mid), transit_duration=0.12)
        depth_true = 0.02
    else:
        cfg = _cfg(transit_model="batman", transit_mid=float(mid), planet_period=1.5,
                   planet_a_rs=6.0, planet_inclination=87.0, limb_darkening=[0.4, 0.2])
        depth_true = 0.02
    shape = lc.transit_shape(cfg.transit, cfg.transit_mid, t, rp=np.sqrt(depth_true))
    assert shape.max() > 0 and (shape == 0).any()
    noise = 1e-3
    flux = 5e4 * (1 - depth_true * shape) * (1 + noise * rng.standard_normal(len(t)))
    fit = lc.transit_depth(cfg.transit, cfg.transit_mid, t, flux)
    assert abs(fit.depth - depth_true) < 3 * fit.depth_err
    n_in = (shape > 0.5 * shape.max()).sum()
    assert 0.5 * noise * np.sqrt(1 / n_in) < fit.depth_err < 3 * noise * np.sqrt(1 / n_in + 1 / len(t))


def test_channels_white_light_and_wavelengths():
    flux = np.ones((4, 250))
    flux[2, 7] = np.nan
    err = np.full((4, 250), 0.1)
    edges = lc.channel_edges(250, 100)
    assert edges.tolist() == [[0, 100], [100, 200], [200, 250]]
    ok = lc.usable_columns(flux)
    white, white_err, ch, ch_err = lc.bin_channels(flux, err, edges, ok)
    assert np.allclose(white, 249) and np.allclose(ch[:, 0], 99) and np.allclose(ch[:, 2], 50)
    assert np.allclose(ch_err[:, 2], 0.1 * np.sqrt(50))
    assert np.allclose(lc.wavelengths([2479.0, 0.4], [0, 10]), [2479.0, 2483.0])
    assert np.allclose(lc.mid_exposure([60000.0, 2460000.5], [86400.0, 0.0]), [60000.5, 60000.0])
