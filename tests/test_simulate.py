"""Tests of the simulator (tiny preset, temporary folders)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from proxy_pixel_pipeline.simulate import PRESETS, SimulationParameters, _trace_model, simulate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny simulation shared by the read-only tests."""
    return simulate(tmp_path_factory.mktemp("sim") / "tiny", preset="tiny", seed=11)


def _frames(folder, kind):
    return sorted((folder / ("darks" if kind == "dark" else "science")).glob(f"{kind}_*.fits"))


def _truth(folder):
    return fits.open(folder / "truth" / "truth.fits")


def _all_files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_same_seed_gives_identical_files_and_different_seed_differs(tmp_path, tiny):
    again = simulate(tmp_path / "again", preset="tiny", seed=11)
    assert _all_files(again) == _all_files(tiny)
    for rel in _all_files(tiny):
        assert (again / rel).read_bytes() == (tiny / rel).read_bytes(), rel
    other = simulate(tmp_path / "other", preset="tiny", seed=12)
    a = fits.getdata(tiny / "darks" / "dark_0000.fits")
    b = fits.getdata(other / "darks" / "dark_0000.fits")
    assert not np.array_equal(a, b, equal_nan=True)


def test_layout_headers_and_config(tiny):
    p = PRESETS["tiny"]
    darks, science = _frames(tiny, "dark"), _frames(tiny, "science")
    assert [f.name for f in darks] == [f"dark_{i:04d}.fits" for i in range(p.n_darks)]
    assert [f.name for f in science] == [f"science_{i:04d}.fits" for i in range(p.n_science)]
    for path, kind in ((darks[0], "DARK"), (science[-1], "SCIENCE")):
        with fits.open(path) as hdul:
            hdr, data = hdul[0].header, hdul[0].data
            assert data.shape == (p.n_rows, p.n_columns)
            assert data.dtype.kind == "f" and data.dtype.itemsize == 4
            assert hdr["IMAGETYP"] == kind and hdr["EXPTIME"] == p.exptime
            assert hdr["BUNIT"] == "adu" and hdr["SIMSEED"] == 11 and hdr["SIMPRES"] == "tiny"
            assert isinstance(hdr["CCDTEMP"], float)
    mask = fits.getdata(tiny / "spectral_mask.fits")
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    with _truth(tiny) as t:
        for key in ("GAIN", "RDNOISE", "BIAS", "EXPTIME", "DEPTH", "SIMPRES", "SIMSEED"):
            assert key in t[0].header
        for ext in ("HOT", "DARK_LEVEL", "DARK_DOUBLING", "FRAMES", "SPECTRUM", "PROFILE"):
            assert ext in t
        assert len(t["FRAMES"].data) == p.n_darks + p.n_science
        assert set(t["PROFILE"].columns.names) >= {"COLUMN", "CENTER", "AMP1", "MU1", "SIG1",
                                                   "AMP2", "MU2", "SIG2"}
    with fits.open(tiny / "truth" / "science_0000.fits") as t:
        assert all(e in t for e in ("BACKGROUND", "SIGNAL", "COSMIC", "MISSING"))
    with fits.open(tiny / "truth" / "dark_0000.fits") as t:
        assert all(e in t for e in ("COSMIC", "MISSING")) and "SIGNAL" not in t
    cfg = yaml.safe_load((tiny / "config.yaml").read_text())
    stage6 = {k: cfg.pop(k) for k in ("wavelength_solution", "transit_model", "transit_mid",
                                      "transit_duration")}
    assert cfg == {"dark_frames": "darks/dark_*.fits", "science_frames": "science/science_*.fits",
                   "spectral_mask": "spectral_mask.fits", "output_dir": "output",
                   "proxy_method": "median", "gain": p.gain, "read_noise": p.read_noise}
    # Stage 6's keys: the simulator's wavelength solution and transit window.
    assert stage6["wavelength_solution"][0] == p.wave_min and stage6["transit_model"] == "box"
    assert stage6["transit_duration"] > 0
    from proxy_pixel_pipeline.runtime.config import load_config
    config = load_config(tiny / "config.yaml")
    assert len(config.dark_paths()) == p.n_darks and len(config.science_paths()) == p.n_science


def test_missing_pixels_are_nan_exactly_where_truth_says(tiny):
    n_missing = 0
    for kind in ("dark", "science"):
        for path in _frames(tiny, kind):
            data = fits.getdata(path)
            missing = fits.getdata(tiny / "truth" / path.name, "MISSING").astype(bool)
            np.testing.assert_array_equal(np.isnan(data), missing)
            n_missing += missing.any()
    assert n_missing > 0  # ~30 % of the 36 frames lose packets


def test_hot_pixels_fraction_and_brightness(tiny):
    p = PRESETS["tiny"]
    with _truth(tiny) as t:
        hot = t["HOT"].data.astype(bool)
    assert abs(hot.mean() - p.hot_fraction) <= 0.5 / hot.size
    stack = np.stack([fits.getdata(f) for f in _frames(tiny, "dark")])
    level = np.nanmedian(stack, axis=0) - p.bias
    # Hot pixels (>= 10 e-/s, 3000 e- per exposure) stand far above all others.
    assert level[hot].min() > 10 * np.median(level[~hot])


def test_dark_level_follows_temperature_law(tmp_path):
    p = PRESETS["tiny"]
    out = simulate(tmp_path / "law", preset="tiny", seed=5, temp_orbit_amplitude=3.0)
    with _truth(out) as t:
        hot = t["HOT"].data.astype(bool)
        frames = t["FRAMES"].data
    darks = frames[frames["KIND"] == "dark"]
    cold, warm = darks[np.argmin(darks["CCDTEMP"])], darks[np.argmax(darks["CCDTEMP"])]
    delta = warm["CCDTEMP"] - cold["CCDTEMP"]
    assert delta > 3.0
    means, errors = [], []
    for row in (cold, warm):
        data = fits.getdata(out / "darks" / row["NAME"]).astype(float)
        cosmic = fits.getdata(out / "truth" / row["NAME"], "COSMIC")
        good = np.isfinite(data) & ~hot & (cosmic == 0)
        # A mean, not a median: the median of integer ADU is quantised by ~1 %.
        electrons = (data[good] - p.bias) * p.gain
        level = electrons.mean()
        # Same pixels in both frames, so only per-pixel Poisson + read noise enters.
        noise = np.sqrt(level + p.read_noise ** 2 + p.gain ** 2 / 12)
        means.append(level)
        errors.append(noise / np.sqrt(good.sum()))
    ratio = means[1] / means[0]
    expected = 2 ** (delta / p.doubling_mean)
    sigma = ratio * np.hypot(errors[0] / means[0], errors[1] / means[1])
    # 1 % allowance for the pixel-to-pixel spread of the doubling temperature.
    assert abs(ratio - expected) < 4 * sigma + 0.01 * expected, (ratio, expected, sigma)


def test_frames_match_truth_within_noise(tiny):
    """data = BACKGROUND + SIGNAL + COSMIC + noise, for science frames and (via the maps) darks."""
    p = PRESETS["tiny"]
    with _truth(tiny) as t:
        d0, doubling = t["DARK_LEVEL"].data, t["DARK_DOUBLING"].data
        frames = t["FRAMES"].data
    pulls = []
    n_cosmic = 0
    for row in frames:
        folder = "darks" if row["KIND"] == "dark" else "science"
        data = fits.getdata(tiny / folder / row["NAME"]).astype(float)
        with fits.open(tiny / "truth" / row["NAME"]) as truth:
            cosmic = truth["COSMIC"].data
            if row["KIND"] == "science":
                expected = truth["BACKGROUND"].data + truth["SIGNAL"].data
            else:
                dark_e = d0 * 2.0 ** ((row["CCDTEMP"] - p.temp_ref) / doubling) * p.exptime
                expected = p.bias + dark_e / p.gain
        n_cosmic += (cosmic > 0).any()
        variance = (expected - p.bias) / p.gain + (p.read_noise / p.gain) ** 2 + 1 / 12
        pull = (data - expected - cosmic) / np.sqrt(variance)
        pulls.append(pull[np.isfinite(pull)].ravel())
    pulls = np.concatenate(pulls)
    assert abs(pulls.mean()) < 0.02 and abs(pulls.std() - 1) < 0.03
    assert n_cosmic > len(frames) / 2


def test_transit_frames_scaled_by_one_minus_depth(tmp_path, tiny):
    p = PRESETS["tiny"]
    with _truth(tiny) as t:
        frames = t["FRAMES"].data
        flux = t["SPECTRUM"].data["FLUX_E"]
    science = frames[frames["KIND"] == "science"]
    transit = science["TRANSIT"]
    third = p.n_science // 3
    assert transit.sum() == third and transit[third:2 * third].all()
    np.testing.assert_allclose(science["FLUX_SCALE"], np.where(transit, 1 - p.transit_depth, 1))
    for row in science:
        signal = fits.getdata(tiny / "truth" / row["NAME"], "SIGNAL").astype(float)
        np.testing.assert_allclose(signal.sum() * p.gain, row["FLUX_SCALE"] * flux.sum(), rtol=1e-5)
    # In the data themselves (deep transit so that it stands out from the noise).
    out = simulate(tmp_path / "deep", preset="tiny", seed=3, transit_depth=0.3, n_science=9,
                   cosmic_rate=0.0, missing_frame_fraction=0.0)
    mask = fits.getdata(out / "spectral_mask.fits").astype(bool)
    sums = []
    for path in _frames(out, "science"):
        bg = fits.getdata(out / "truth" / path.name, "BACKGROUND")
        sums.append((fits.getdata(path) - bg)[mask].sum())
    sums = np.array(sums)
    ratio = sums[3:6].mean() / np.r_[sums[:3], sums[6:]].mean()
    assert abs(ratio - 0.7) < 0.02


def test_trace_inside_mask_and_profile_table_matches_signal(tiny):
    mask = fits.getdata(tiny / "spectral_mask.fits").astype(bool)
    signal = fits.getdata(tiny / "truth" / "science_0000.fits", "SIGNAL").astype(float)
    assert signal[~mask].sum() < 1e-4 * signal.sum()
    assert signal[~mask].max() < 1e-2 * signal.max()
    with _truth(tiny) as t:
        prof = t["PROFILE"].data
    y = np.arange(signal.shape[0])[:, None]
    model = (prof["AMP1"] * np.exp(-0.5 * ((y - prof["MU1"]) / prof["SIG1"]) ** 2)
             + prof["AMP2"] * np.exp(-0.5 * ((y - prof["MU2"]) / prof["SIG2"]) ** 2))
    np.testing.assert_allclose(model, signal, atol=1e-4 * signal.max())
    # Peaks merged on the left, apart on the right.
    sep = prof["MU2"] - prof["MU1"]
    assert sep[0] == 0 and sep[-1] == PRESETS["tiny"].trace_separation_max


def test_sentinel_mode_writes_int32(tmp_path):
    out = simulate(tmp_path / "int", preset="tiny", seed=2, missing_value=0, n_darks=10,
                   missing_frame_fraction=1.0)
    for path in _frames(out, "dark") + _frames(out, "science"):
        data = fits.getdata(path)
        assert data.dtype.kind == "i" and data.dtype.itemsize == 4
        missing = fits.getdata(out / "truth" / path.name, "MISSING").astype(bool)
        assert missing.any()
        np.testing.assert_array_equal(data == 0, missing)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["missing_value"] == 0


def test_warm_science_frames_above_darks(tmp_path):
    out = simulate(tmp_path / "warm", preset="tiny", seed=4, science_above_darks=4.0)
    with _truth(out) as t:
        frames = t["FRAMES"].data
    dark_t = frames["CCDTEMP"][frames["KIND"] == "dark"]
    sci_t = frames["CCDTEMP"][frames["KIND"] == "science"]
    assert sci_t.min() >= dark_t.max() + 4.0 - 1e-9  # temperatures are rounded to 1 mdegC
    for name in ("demo_warm", "cute_warm"):
        assert PRESETS[name].science_above_darks == 4.0


def test_refuses_non_empty_folder_and_overwrite_removes_stale_frames(tmp_path):
    out = simulate(tmp_path / "o", preset="tiny", seed=1)
    with pytest.raises(FileExistsError, match=str(out)):
        simulate(out, preset="tiny", seed=1)
    (out / "notes.txt").write_text("keep me")
    simulate(out, preset="tiny", seed=1, overwrite=True, n_darks=5)
    assert len(_frames(out, "dark")) == 5 and len(list((out / "truth").glob("dark_*"))) == 5
    assert (out / "notes.txt").read_text() == "keep me"
    assert not list(out.rglob("*.part"))


def test_bad_arguments():
    with pytest.raises(TypeError, match="no_such_field"):
        simulate("/nonexistent/never", preset="tiny", no_such_field=1)
    with pytest.raises(ValueError, match="preset"):
        simulate("/nonexistent/never", preset="huge")
    with pytest.raises(ValueError, match="gain"):
        SimulationParameters(gain=-1.0)
    with pytest.raises(ValueError, match="does not fit"):
        simulate("/nonexistent/never", preset="tiny", n_rows=10)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_geometry(name):
    p = PRESETS[name]
    trace = _trace_model(p)
    n_spec = int(trace["mask"].sum())
    assert 0 < n_spec < 0.5 * p.n_rows * p.n_columns
    if name.startswith("cute"):
        assert (p.n_rows, p.n_columns) == (515, 2048) and 60_000 <= n_spec <= 80_000


def test_cli_from_another_folder(tmp_path):
    script = REPO / "simulate.py"
    out = tmp_path / "cli"
    run = subprocess.run([sys.executable, str(script), "--preset", "tiny", "--out", str(out),
                          "--seed", "7"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert str(out) in run.stdout and (out / "config.yaml").is_file()
    again = subprocess.run([sys.executable, str(script), "--preset", "tiny", "--out", str(out)],
                           cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode != 0 and "not empty" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
