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
    stage7 = {k: cfg.pop(k) for k in list(cfg) if k.startswith("systematics_")}
    # A detector without systematics: stage 7 fits a level and a slope.
    assert stage7 == {"systematics_ramp": "none", "systematics_first_orbit": "keep",
                      "systematics_visit_order": 1, "systematics_offset_order": 0,
                      "systematics_width_order": 0}
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


# ---------------------------------------------------------------------------
# Modelable systematics, visits, transmission spectrum (wasp189b's machinery)
# ---------------------------------------------------------------------------
#: A reduced wasp189b: 512 columns, 3 darks and 40 science frames (five orbit windows), no
#: lost pixels (so that the trace's centroid can be measured in every column of the data).
_REDUCED = dict(n_columns=512, trace_columns=(10, 500), n_darks=3, n_science=40,
                dead_fraction=0.0, missing_frame_fraction=0.0)


@pytest.fixture(scope="module")
def visits(tmp_path_factory):
    """Three visits of the reduced wasp189b preset (seed 8)."""
    return simulate(tmp_path_factory.mktemp("sim") / "visits", preset="wasp189b", seed=8,
                    visits=3, **_REDUCED)


def _tables(folder):
    with _truth(folder) as t:
        return (t[0].header.copy(), {n: t[n].data.copy() for n in
                                     ("FRAMES", "SPECTRUM", "PROFILE", "SYSTEMATICS",
                                      "TRANSMISSION")})


def test_tiny_and_demo_frames_unchanged():
    """Presets without the new systematics give the files of commit 0abb4e7 (sha256 of every
    FITS file, path and bytes; a change of astropy's FITS writer would change it too)."""
    import hashlib
    import tempfile

    expected = {("tiny", 3): "b98336897becd956ec48da31817cb7e648de6ea1e63201522790ca84bf6ba011",
                ("demo", 1): "a9a75f797bd938ebfb4b8724517bf7d701df3a155e8de9e613cc937bd36ee425"}
    for (preset, seed), digest in expected.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = simulate(Path(tmp) / preset, preset=preset, seed=seed)
            h = hashlib.sha256()
            for path in sorted(out.rglob("*.fits")):
                h.update(str(path.relative_to(out)).encode())
                h.update(path.read_bytes())
        assert h.hexdigest() == digest, preset
    for name in ("tiny", "demo", "cute", "demo_warm", "cute_warm"):
        assert not PRESETS[name].systematics


def test_truth_systematics_are_what_the_frames_contain(visits):
    folder = visits / "visit1"
    p = PRESETS["wasp189b"]
    header, tables = _tables(folder)
    sysm, prof, frames = tables["SYSTEMATICS"], tables["PROFILE"], tables["FRAMES"]
    science = frames[frames["KIND"] == "science"]
    assert list(sysm["NAME"]) == list(science["NAME"])
    np.testing.assert_allclose(sysm["FLUX_SCALE"],
                               sysm["TRANSIT_FLUX"] * sysm["THROUGHPUT"] * sysm["SLIT_FACTOR"])
    np.testing.assert_allclose(science["FLUX_SCALE"], sysm["FLUX_SCALE"])
    np.testing.assert_allclose(sysm["THROUGHPUT"], sysm["RAMP"] * sysm["DRIFT"])
    np.testing.assert_allclose(sysm["SLIT_FACTOR"],
                               1 - p.slit_loss * (sysm["TRACE_OFFSET"] ** 2 + sysm["SMEAR"] ** 2))
    np.testing.assert_allclose(sysm["SMEAR"], sysm["JITTER"] / p.plate_scale)
    flux = tables["SPECTRUM"]["FLUX_E"]
    y = np.arange(p.n_rows)[:, None]
    cols = slice(30, 480)
    model = (prof["AMP1"] * np.exp(-0.5 * ((y - prof["MU1"]) / prof["SIG1"]) ** 2)
             + prof["AMP2"] * np.exp(-0.5 * ((y - prof["MU2"]) / prof["SIG2"]) ** 2))[:, cols]
    c0 = (model * y).sum(axis=0) / model.sum(axis=0)
    v0 = (model * (y - c0) ** 2).sum(axis=0) / model.sum(axis=0)
    measured = []
    for row in sysm:
        name = row["NAME"].strip()
        hdr = fits.getheader(folder / "science" / name)
        assert hdr["JITTER"] == row["JITTER"] and hdr["CCDTEMP"] == row["CCDTEMP"]
        assert hdr["MJD-OBS"] + p.exptime / 2 / 86400 == pytest.approx(row["MJD_MID"], abs=1e-9)
        with fits.open(folder / "truth" / name) as t:
            signal = t["SIGNAL"].data.astype(float)
            background, cosmic = t["BACKGROUND"].data, t["COSMIC"].data
            missing = t["MISSING"].data.astype(bool)
        # The noise-free signal: moved by TRACE_OFFSET, widened by SMEAR, scaled by FLUX_SCALE.
        s = signal[:, cols]
        c = (s * y).sum(axis=0) / s.sum(axis=0)
        v = (s * (y - c) ** 2).sum(axis=0) / s.sum(axis=0)
        np.testing.assert_allclose(c - c0, row["TRACE_OFFSET"], atol=2e-3)
        np.testing.assert_allclose(v - v0, row["SMEAR"] ** 2, atol=0.02)
        assert signal.sum() * p.gain == pytest.approx(row["FLUX_SCALE"] * flux.sum(), rel=1e-4)
        # The noisy frame: the trace's centroid in the data follows the offset too.
        data = fits.getdata(folder / "science" / name).astype(float) - background - cosmic
        assert not missing.any()
        near = np.abs(y - c0) < 20                         # rows of the trace, not the noise
        centroid = [(np.where(near, a, 0) * y).sum() / np.where(near, a, 0).sum()
                    for a in (data[:, cols], s, model)]
        measured.append((centroid[0] - centroid[2], centroid[1] - centroid[2]))
    measured, expected = np.array(measured).T
    assert np.corrcoef(measured, sysm["TRACE_OFFSET"])[0, 1] > 0.99
    assert np.sqrt(np.mean((measured - expected) ** 2)) < 0.08       # the noise: ~0.04 rows
    assert np.ptp(sysm["TRACE_OFFSET"]) > 1.0 and np.ptp(sysm["SMEAR"]) > 0.5
    # Ramps settle within every window, most in the visit's first orbit.
    for orbit in np.unique(sysm["ORBIT"]):
        ramp = sysm["RAMP"][sysm["ORBIT"] == orbit]
        assert (np.diff(ramp) > 0).all()
    first, second = sysm["ORBIT"] == 1, sysm["ORBIT"] == 2
    np.testing.assert_allclose(1 - sysm["RAMP"][first][:3],
                               p.ramp_first_orbit * (1 - sysm["RAMP"][second][:3]))
    assert 0.003 < 1 - sysm["RAMP"].min() < 0.1
    assert header["RAMPAMP"] > 0 and "DRIFT2" in header


def test_orbit_windows_have_gaps(visits):
    p = PRESETS["wasp189b"]
    _, tables = _tables(visits / "visit2")
    sysm = tables["SYSTEMATICS"]
    start = np.array([fits.getheader(visits / "visit2" / "science" / n.strip())["MJD-OBS"]
                      for n in sysm["NAME"]])
    step = np.diff(start) * 86400.0
    new_orbit = np.diff(sysm["ORBIT"]) == 1
    assert (np.diff(sysm["ORBIT"]) >= 0).all() and sysm["ORBIT"].max() == 5
    np.testing.assert_allclose(step[~new_orbit], p.cadence, atol=1e-3)
    per_window = np.bincount(sysm["ORBIT"])[1:]
    assert list(per_window) == [8, 8, 8, 8, 8]
    np.testing.assert_allclose(step[new_orbit], p.orbit_period - 7 * p.cadence, atol=1e-3)
    # Every exposure ends inside the visible part of its orbit, the gaps are the rest.
    assert (sysm["ORBIT_TIME"] + p.exptime / 2 <= p.orbit_visible_fraction * p.orbit_period).all()
    assert (step[new_orbit] - p.exptime > (1 - p.orbit_visible_fraction) * p.orbit_period).all()


def test_visits_are_whole_periods_apart_each_with_its_own_systematics(visits, tmp_path):
    from proxy_pixel_pipeline.runtime.config import load_config

    p = PRESETS["wasp189b"]
    configs = [load_config(visits / f"visit{k}" / "config.yaml") for k in (1, 2, 3)]
    mids = np.array([c.transit_mid for c in configs])
    np.testing.assert_allclose(np.diff(mids), p.visit_spacing * p.planet_period, atol=1e-9)
    for k, c in enumerate(configs, start=1):
        assert c.transit_model == "batman" and c.planet_period == p.planet_period
        assert c.planet_a_rs == p.planet_a_rs and c.planet_inclination == p.planet_inclination
        assert c.limb_darkening == p.limb_darkening
        header, tables = _tables(visits / f"visit{k}")
        assert header["VISIT"] == k and header["T_MID"] == c.transit_mid
        mjd = tables["SYSTEMATICS"]["MJD_MID"]
        assert mjd.min() < c.transit_mid < mjd.max()
        assert fits.getheader(visits / f"visit{k}" / "science" / "science_0000.fits")["VISIT"] == k
    headers = [_tables(visits / f"visit{k}")[0] for k in (1, 2, 3)]
    shifts = [h["TSHIFT"] for h in headers]
    assert len(set(shifts)) == 3 and max(abs(s) for s in shifts) <= p.visit_trace_shift
    assert len({h["RAMPAMP"] for h in headers}) == 3
    masks = [fits.getdata(visits / f"visit{k}" / "spectral_mask.fits") for k in (1, 2, 3)]
    rows = np.arange(p.n_rows)
    first_rows = [rows[m[:, 100] != 0][0] for m in masks]
    assert np.diff(first_rows).tolist() == np.diff([round(s) for s in shifts]).tolist()
    darks = [fits.getdata(visits / f"visit{k}" / "truth" / "truth.fits", "DARK_LEVEL")
             for k in (1, 2)]
    np.testing.assert_array_equal(darks[0], darks[1])           # one detector
    temps = [_tables(visits / f"visit{k}")[1]["SYSTEMATICS"]["CCDTEMP"] for k in (1, 2)]
    assert not np.array_equal(temps[0], temps[1])
    # Visit 1 is the single data set of the same seed.
    single = simulate(tmp_path / "single", preset="wasp189b", seed=8, **_REDUCED)
    for name in ("science/science_0007.fits", "darks/dark_0001.fits"):
        np.testing.assert_array_equal(fits.getdata(single / name),
                                      fits.getdata(visits / "visit1" / name))


def test_transmission_spectrum_and_transit(visits):
    from proxy_pixel_pipeline.runtime.config import load_config
    from proxy_pixel_pipeline.science.lightcurves import transit_shape

    p = PRESETS["wasp189b"]
    folder = visits / "visit3"
    header, tables = _tables(folder)
    trans, sysm, spec = tables["TRANSMISSION"], tables["SYSTEMATICS"], tables["SPECTRUM"]
    cfg = load_config(folder / "config.yaml")
    wave = cfg.wavelength_solution[0] + cfg.wavelength_solution[1] * trans["COLUMN"]
    np.testing.assert_allclose(trans["WAVE"], wave)
    base = np.sqrt(header["DEPTH"])
    assert header["RP_RS"] == pytest.approx(base)
    far = np.min([np.abs(trans["WAVE"] - c) for c, _, _ in p.planet_lines], axis=0) > 15
    np.testing.assert_allclose(trans["RP_RS"][far], base)
    mg = np.abs(trans["WAVE"] - 2800.0) <= 6.5                      # a 13 A band
    assert trans["RP_RS"][mg].max() > base + 0.12 and 0.18 < trans["RP_RS"][mg].mean() < 0.24
    fe = np.abs(trans["WAVE"] - 2600.17) <= 1.0
    assert trans["RP_RS"][fe].max() > base + 0.03
    # Stellar Mg II h&k are deep absorption lines in the spectrum.
    cont = (np.abs(trans["WAVE"] - 2830) < 10)
    assert spec["FLUX_E"][mg].min() < 0.3 * spec["FLUX_E"][cont].mean()
    # The frames hold the batman transit of each column's Rp/R*, the config's planet.
    names = [n.strip() for n in sysm["NAME"]]
    signal = np.array([fits.getdata(folder / "truth" / n, "SIGNAL").sum(axis=0) for n in names])
    on = spec["FLUX_E"] > 0
    lc = np.ones_like(signal)
    lc[:, on] = signal[:, on] * p.gain / (spec["FLUX_E"][on]
                                          * (sysm["THROUGHPUT"] * sysm["SLIT_FACTOR"])[:, None])
    shape = transit_shape(cfg.transit, cfg.transit_mid, sysm["MJD_MID"], rp=base)             # instantaneous, no smoothing
    full = shape > 0.9 * shape.max()                                 # clear of the contacts
    assert full.sum() >= 8 and (shape == 0).sum() >= 8
    np.testing.assert_allclose(lc[:, on & far][full].mean(axis=1), 1 - base ** 2 * shape[full],
                               atol=3e-4)
    np.testing.assert_allclose(lc[:, on & far][shape == 0], 1.0, rtol=1e-4)
    mg_depth = 1 - lc[full][:, on & mg].mean()
    assert mg_depth > 2.5 * (1 - lc[full][:, on & far].mean())     # the Mg II bump is deeper
    assert (sysm["TRANSIT_FLUX"] < 1).sum() == (tables["FRAMES"]["TRANSIT"]).sum()


def test_bad_systematics_and_visits():
    with pytest.raises(ValueError, match="planet_period"):
        simulate("/nonexistent/never", preset="tiny", visits=2)
    with pytest.raises(ValueError, match="visits"):
        simulate("/nonexistent/never", preset="wasp189b", visits=0)
    with pytest.raises(ValueError, match="orbit_visible_fraction"):
        SimulationParameters(orbit_visible_fraction=0.02)            # shorter than an exposure
    with pytest.raises(ValueError, match="planet_a_rs"):
        SimulationParameters(planet_period=2.7)
    with pytest.raises(ValueError, match="planet_lines"):
        SimulationParameters(planet_lines=((2796.35, 0.1, 0.0),))
    with pytest.raises(ValueError, match="visit_trace_shift"):
        simulate("/nonexistent/never", preset="wasp189b", visit_trace_shift=20.0)


def test_visits_of_a_small_planet_and_overwrite_with_fewer(tmp_path):
    planet = dict(planet_period=1.5, planet_a_rs=4.0, planet_inclination=88.0, n_science=9)
    out = simulate(tmp_path / "v", preset="tiny", seed=3, visits=2, **planet)
    assert sorted(p.name for p in out.iterdir()) == ["visit1", "visit2"]
    cfg = [yaml.safe_load((out / f"visit{k}" / "config.yaml").read_text()) for k in (1, 2)]
    assert cfg[1]["transit_mid"] - cfg[0]["transit_mid"] == pytest.approx(1.5, abs=1e-9)
    assert cfg[0]["transit_model"] == "batman" and cfg[0]["limb_darkening"] is None
    (out / "notes.txt").write_text("keep me")
    simulate(out, preset="tiny", seed=3, visits=1, overwrite=True, **planet)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "visit1"]
    with pytest.raises(FileExistsError):
        simulate(out, preset="tiny", seed=3, visits=1, **planet)


def test_kelt9b_is_another_planet_with_other_systematics():
    a, b = PRESETS["wasp189b"], PRESETS["kelt9b"]
    assert a.systematics and b.systematics
    for name in ("planet_period", "planet_a_rs", "transit_depth", "planet_lines",
                 "orbit_visible_fraction", "jitter_median", "ramp_amplitude", "ramp_tau",
                 "ramp_first_orbit", "drift_order"):
        assert getattr(a, name) != getattr(b, name), name


def test_cli_visits_need_a_planet(tmp_path):
    run = subprocess.run([sys.executable, str(REPO / "simulate.py"), "--preset", "tiny",
                          "--out", str(tmp_path / "x"), "--visits", "2"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 1 and "planet_period" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_cli_set_overrides_preset_fields(tmp_path):
    """``--set KEY=VALUE`` changes the preset's fields (literals, else text); a bad key or
    value is one line naming it, exit 1, nothing written."""
    def run(*extra, out="x"):
        return subprocess.run([sys.executable, str(REPO / "simulate.py"), "--preset", "tiny",
                               "--seed", "3", "--out", str(tmp_path / out), *extra],
                              cwd=tmp_path, capture_output=True, text=True)
    ok = run("--set", "n_science=3", "n_darks=4", "dark_sigma_ln=0.7")
    assert ok.returncode == 0, ok.stderr
    assert len(list((tmp_path / "x" / "science").glob("*.fits"))) == 3
    assert len(list((tmp_path / "x" / "darks").glob("*.fits"))) == 4
    for extra, named in ((["nosuch=1"], "nosuch"), (["ramp_shape=cubic"], "ramp_shape"),
                         (["n_science"], "n_science")):
        bad = run("--set", *extra, out="y")
        assert bad.returncode == 1 and named in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "y").exists()
