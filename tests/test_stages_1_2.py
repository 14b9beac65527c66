"""Stages 1 and 2 as users run them: the scripts, on files, alone and under MPI."""

import numpy as np
import pytest
from astropy.io import fits

from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.io.atomic import public_mode
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.io.products import read_matches

from conftest import make_twin_dataset, run_script, write_config


def run_stage1(data, ranks=None, **settings):
    config = write_config(data["folder"], **{**data.get("settings", {}), **settings})
    run_script("1_Proxy_Matches.py", "--config", config, "--overwrite", ranks=ranks)
    return Layout(load_config(config).output_dir)


@pytest.mark.parametrize("method", ["median", "lsq"])
def test_stage1_finds_planted_twins_and_excludes_bad_pixels(twin_dataset, method):
    layout = run_stage1(twin_dataset, proxy_method=method)
    spectral, proxy, table = read_matches(layout.matches)
    found = {tuple(s): tuple(p) for s, p in zip(spectral, proxy[:, 0])}
    assert len(found) == twin_dataset["mask"].sum()
    usable = [s for s in twin_dataset["twin_of"] if s not in twin_dataset["excluded"]]
    assert all(found[s] == twin_dataset["twin_of"][s] for s in usable)
    flags = dict(zip(map(tuple, spectral), table["FLAG"]))
    hot_spec = [s for s in found if twin_dataset["hot"][s]]
    assert hot_spec and all(flags[s] & 1 and found[s] == (-1, -1) for s in hot_spec)
    assert flags[twin_dataset["few"]] & 2 and found[twin_dataset["few"]] == (-1, -1)
    # No hot pixel is ever used as a proxy.
    used = proxy[:, 0][proxy[:, 0, 0] >= 0]
    assert not twin_dataset["hot"][used[:, 0], used[:, 1]].any()
    header = fits.getheader(layout.matches)
    assert header["STAGE"] == 1 and header["CFGHASH"] and header["HIERARCH PPP PROXY_METHOD"] == method


def test_stage2_writes_background_and_final_frames(twin_dataset):
    layout = run_stage1(twin_dataset)
    run_script("2_Frames.py", "--config", twin_dataset["config"])
    spectral, proxy, _ = read_matches(layout.matches)
    for i, science in enumerate(twin_dataset["science"]):
        name = f"science_{i:03d}.fits"
        background = fits.getdata(layout.root / "background" / name)
        final = fits.getdata(layout.root / "final_no_infill" / name)
        ok = proxy[:, 0, 0] >= 0
        s, p = spectral[ok], proxy[ok, 0]
        np.testing.assert_array_equal(background[s[:, 0], s[:, 1]], science[p[:, 0], p[:, 1]])
        np.testing.assert_array_equal(final, science - background)
        outside = np.ones(science.shape, bool)
        outside[s[:, 0], s[:, 1]] = False
        assert np.isnan(background[outside]).all()
        # The twins cancel the background: what is left is the 500 ADU signal and noise.
        np.testing.assert_allclose(np.nanmedian(final[s[:, 0], s[:, 1]]), 500, atol=0.2)
        assert fits.getheader(layout.root / "final_no_infill" / name)["STAGE"] == 2
        # Readable like any file the user creates (not mkstemp's owner-only mode).
        assert (layout.root / "background" / name).stat().st_mode & 0o777 == public_mode()


def test_stage2_refuses_matches_from_another_config(twin_dataset):
    run_stage1(twin_dataset)
    config = write_config(twin_dataset["folder"], proxy_method="lsq")
    proc = run_script("2_Frames.py", "--config", config, check=False)
    assert proc.returncode != 0 and "1_Proxy_Matches.py" in proc.stderr
    assert "proxy_method: median in the file, lsq in config.yaml" in proc.stderr


def test_stage2_refuses_matches_made_from_darks_replaced_since(twin_dataset):
    layout = run_stage1(twin_dataset)
    dark = twin_dataset["folder"] / "darks" / "dark_003.fits"
    original = dark.read_bytes()
    dark.write_bytes((twin_dataset["folder"] / "darks" / "dark_004.fits").read_bytes())
    proc = run_script("2_Frames.py", "--config", twin_dataset["config"], check=False)
    assert proc.returncode != 0 and "replaced since" in proc.stderr
    assert "1_Proxy_Matches.py" in proc.stderr and not (layout.root / "background").exists()
    dark.write_bytes(original)       # same bytes again (a new file date does not matter)
    run_script("2_Frames.py", "--config", twin_dataset["config"])


@pytest.mark.parametrize("k", [1, 4, 5])
def test_one_and_two_ranks_give_identical_matches(tmp_path, k):
    data = make_twin_dataset(tmp_path, shape=(24, 48))
    for i, dark in enumerate(sorted((data["folder"] / "darks").glob("*.fits"))):
        fits.setval(dark, "CCDTEMP", value=round(-5 + 1.5 * np.sin(i), 3))   # for OFFTCOEF
    tables, headers = [], []
    for ranks in (None, 2):
        # A small block size makes several uneven blocks per rank.
        layout = run_stage1(data, ranks=ranks, block_size=17, proxy_count=k)
        tables.append(fits.getdata(layout.matches, "MATCHES"))
        headers.append(fits.getheader(layout.matches))
    for name in tables[0].names:
        assert tables[0][name].tobytes() == tables[1][name].tobytes(), name
    # K > 1 is cross-fitted (24 darks: two halves of 12 >= min_valid_samples), and the
    # offsets' temperature coefficient is summed in block order on any number of ranks.
    assert headers[0]["XFIT"] == headers[1]["XFIT"] == (k > 1)
    assert headers[0]["TDARKMED"] == headers[1]["TDARKMED"]
    assert ("OFFTCOEF" in headers[0]) == ("OFFTCOEF" in headers[1]) == (k > 1)
    if k > 1:
        assert headers[0]["OFFTCOEF"] == headers[1]["OFFTCOEF"]


@pytest.mark.parametrize("settings", [{}, {"proxy_count": 4, "proxy_offset": True,
                                           "proxy_combine": "clipped_mean"}])
def test_stage2_same_frames_on_two_ranks(tmp_path, settings):
    data = make_twin_dataset(tmp_path, n_science=5)
    layout = run_stage1(data, **settings)

    def outputs():
        final = sorted((layout.root / "final_no_infill").glob("*.fits"))
        error = [fits.getdata(layout.root / "background" / p.name, "BKG_ERR")
                 for p in final] if settings else []
        return [fits.getdata(p) for p in final] + error

    run_script("2_Frames.py", "--config", data["config"])
    one = outputs()
    run_script("2_Frames.py", "--config", data["config"], "--overwrite", ranks=2)
    two = outputs()
    assert len(one) == (10 if settings else 5)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def tiny_k16(tmp_path_factory):
    """A tiny simulated data set matched with K = 16 proxies (stage 1 run once)."""
    from proxy_pixel_pipeline.simulate import simulate

    folder = simulate(tmp_path_factory.mktemp("k16") / "data", preset="tiny", seed=7)
    config = folder / "config.yaml"
    config.write_text(config.read_text() + "\nproxy_count: 16\n")
    run_script("1_Proxy_Matches.py", "--config", config)
    return folder


def _stage2_errors(folder, **settings):
    """Run stage 2 with ``settings``; (background - true background, BKG_ERR) on pixels
    whose proxies all escaped cosmic rays, pooled over the science frames."""
    config = folder / "config.yaml"
    variant = folder / f"config_{'_'.join(f'{k}{v}' for k, v in settings.items())}.yaml"
    variant.write_text(config.read_text() + "".join(f"\n{k}: {v}" for k, v in settings.items()))
    run_script("2_Frames.py", "--config", variant, "--overwrite")
    layout = Layout(load_config(variant).output_dir)
    spectral, proxy, _ = read_matches(layout.matches)
    py, px = proxy[..., 0], proxy[..., 1]
    errors, sigmas = [], []
    for path in sorted((folder / "science").glob("*.fits")):
        with fits.open(folder / "truth" / path.name) as truth:
            true_bg, cosmic = truth["BACKGROUND"].data, truth["COSMIC"].data
        with fits.open(layout.background(path)) as hdul:
            background, sigma = hdul[0].data, hdul["BKG_ERR"].data
            assert hdul["BKG_ERR"].header["BUNIT"] == "adu"
        hit = ((py >= 0) & (cosmic[np.maximum(py, 0), np.maximum(px, 0)] > 0)).any(axis=1)
        s = spectral[~hit]
        ok = np.isfinite(background[s[:, 0], s[:, 1]])
        s = s[ok]
        errors.append((background - true_bg)[s[:, 0], s[:, 1]])
        sigmas.append(sigma[s[:, 0], s[:, 1]])
    return np.concatenate(errors), np.concatenate(sigmas)


@pytest.mark.parametrize("combine", ["clipped_mean", "median"])
def test_stage2_background_uncertainty_matches_the_true_error(tiny_k16, combine):
    error, sigma = _stage2_errors(tiny_k16, proxy_combine=combine, proxy_offset="true")
    assert len(error) > 3000 and np.isfinite(sigma).all()
    # BKG_ERR is a one-sigma error: on average as large as the true error, and the
    # normalised errors have unit width (robust: a 16-value spread has ~18 % scatter).
    rms = np.sqrt(np.mean(error**2) / np.mean(sigma**2))
    z = error / sigma
    robust = 1.4826 * np.median(np.abs(z - np.median(z)))
    assert 0.8 < rms < 1.25 and 0.8 < robust < 1.25, (rms, robust)


def test_stage2_offsets_remove_the_proxies_level_difference(tiny_k16):
    plain, _ = _stage2_errors(tiny_k16, proxy_combine="clipped_mean", proxy_offset="false")
    offset, _ = _stage2_errors(tiny_k16, proxy_combine="clipped_mean", proxy_offset="true")
    # Same pixels either way; the offsets take out the matched level's bias.
    assert len(plain) == len(offset)
    assert abs(np.mean(offset)) < abs(np.mean(plain))
    assert np.sqrt(np.mean(offset**2)) < np.sqrt(np.mean(plain**2))


def test_stage2_warns_when_science_frames_are_beyond_the_darks_temperatures(tmp_path):
    from proxy_pixel_pipeline.simulate import simulate

    for above, warned in ((None, False), (2.0, True)):
        folder = simulate(tmp_path / str(above), preset="tiny", seed=3, science_above_darks=above)
        config = folder / "config.yaml"
        run_script("1_Proxy_Matches.py", "--config", config)
        proc = run_script("2_Frames.py", "--config", config)
        assert ("outside the darks' CCD temperatures" in proc.stderr) == warned, proc.stderr


def test_an_instrument_runid_keyword_is_not_pipeline_lineage(twin_dataset):
    """Observatories may write RUNID into raw frames: that is not one of our runs."""
    dark = twin_dataset["folder"] / "darks" / "dark_002.fits"
    with fits.open(dark) as hdul:
        hdul[0].header["RUNID"] = "24A-07"
        hdul.writeto(dark, overwrite=True)
    layout = run_stage1(twin_dataset)
    assert not any(k.startswith("PARENT") for k in fits.getheader(layout.matches))
    run_script("2_Frames.py", "--config", twin_dataset["config"])
