"""Stages 1 and 2 as users run them: the scripts, on files, alone and under MPI."""

import numpy as np
import pytest
from astropy.io import fits

from proxy_pixel_pipeline.config import load_config
from proxy_pixel_pipeline.atomic import public_mode
from proxy_pixel_pipeline.layout import Layout
from proxy_pixel_pipeline.products import read_matches

from conftest import make_twin_dataset, run_script, write_config


def run_stage1(data, ranks=None, **settings):
    config = write_config(data["folder"], **settings)
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


@pytest.mark.parametrize("k", [1, 4])
def test_one_and_two_ranks_give_identical_matches(tmp_path, k):
    data = make_twin_dataset(tmp_path, shape=(24, 48))
    tables = []
    for ranks in (None, 2):
        # A small block size makes several uneven blocks per rank.
        layout = run_stage1(data, ranks=ranks, block_size=17, proxy_count=k)
        tables.append(fits.getdata(layout.matches, "MATCHES"))
    for name in tables[0].names:
        np.testing.assert_array_equal(tables[0][name], tables[1][name], err_msg=name)


def test_stage2_same_frames_on_two_ranks(tmp_path):
    data = make_twin_dataset(tmp_path, n_science=5)
    layout = run_stage1(data)
    run_script("2_Frames.py", "--config", data["config"])
    one = [fits.getdata(p) for p in sorted((layout.root / "final_no_infill").glob("*.fits"))]
    run_script("2_Frames.py", "--config", data["config"], "--overwrite", ranks=2)
    two = [fits.getdata(p) for p in sorted((layout.root / "final_no_infill").glob("*.fits"))]
    assert len(one) == 5
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
