"""Stages 6 and 7 (6_Spectra.py, 7_Transit_Fit.py) as users run them, on the tiny simulated
data set (K = 16)."""

import shutil

import numpy as np
import pytest
from astropy.io import fits

from proxy_pixel_pipeline.runtime import registry
from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.simulate import simulate

from conftest import run_script

K16 = "proxy_count: 16\nproxy_combine: clipped_mean\nproxy_offset: true\n"
EARLIER = [s.script for s in registry.STAGES if s.number <= 5]


@pytest.fixture(scope="module")
def tiny6(tmp_path_factory):
    folder = simulate(tmp_path_factory.mktemp("tiny6") / "data", preset="tiny", seed=23)
    config = folder / "config.yaml"
    config.write_text(config.read_text() + K16)
    for script in EARLIER:
        run_script(script, "--config", config)
    layout = Layout(load_config(config).output_dir)
    with fits.open(layout.final(load_config(config).science_paths()[0])) as hdul:
        if "ERR" not in hdul:
            pytest.skip("stage 5 does not write ERR/DQ yet (issue 11)")
    run_script("6_Spectra.py", "--config", config)
    run_script("7_Transit_Fit.py", "--config", config)
    return config, layout


def _products(layout, cfg):
    out = {}
    for path in [*map(layout.spectra, cfg.science_paths()), layout.light_curves,
                 layout.transit_depths, layout.transit_fit, layout.transit_samples]:
        with fits.open(path) as hdul:
            out[path.name] = [np.array(h.data) for h in hdul[1:]]
    return out


def _copy_run(config, layout, tmp_path):
    """A copy of a finished run's data and products to break."""
    data = tmp_path / "data"
    shutil.copytree(config.parent, data, symlinks=True)
    return data / "config.yaml", Layout(data / "output")


def test_outputs_follow_the_contract(tiny6):
    config, layout = tiny6
    cfg = load_config(config)
    from specutils import Spectrum

    path = layout.spectra(cfg.science_paths()[0])
    spec = Spectrum.read(path, format="tabular-fits")
    assert spec.spectral_axis.unit.to_string() == "Angstrom"
    assert np.isclose(spec.spectral_axis[0].value, cfg.wavelength_solution[0])
    table = fits.getdata(path, "SPECTRUM")
    assert table.names == ["COLUMN", "WAVELENGTH", "FLUX", "FLUX_ERR", "FLUX_BOX",
                           "FLUX_BOX_ERR", "DQ"]
    assert fits.getheader(path, "SPECTRUM")["MJD-OBS"] > 0
    lcs = fits.getdata(layout.light_curves, "LIGHTCURVES")
    assert {"FILE", "TIME", "WHITE", "WHITE_ERR", "CHANNELS", "CHANNELS_ERR"} <= set(lcs.names)
    assert len(lcs) == len(cfg.science_paths()) and np.all(np.diff(lcs["TIME"]) > 0)
    assert "CHANNELS" in [h.name for h in fits.open(layout.light_curves)]
    depths = fits.getdata(layout.transit_depths, "DEPTHS")
    assert depths.names[:10] == ["CHANNEL", "WAVELENGTH_LO", "WAVELENGTH_HI", "COLUMN_LO",
                                 "COLUMN_HI", "RP_RS", "RP_RS_ERR_LO", "RP_RS_ERR_HI", "DEPTH",
                                 "DEPTH_ERR"]
    assert depths["CHANNEL"][0] == "white"
    injected = fits.getheader(config.parent / "truth" / "truth.fits")["DEPTH"]
    assert abs(depths["DEPTH"][0] - injected) < 3 * depths["DEPTH_ERR"][0]


def test_flux_errors_are_calibrated_on_the_tiny_preset(tiny6):
    config, layout = tiny6
    cfg = load_config(config)
    with fits.open(config.parent / "truth" / "truth.fits") as truth:
        flux_e = truth["SPECTRUM"].data["FLUX_E"]
        scale = dict(zip(truth["FRAMES"].data["NAME"], truth["FRAMES"].data["FLUX_SCALE"]))
        gain = truth[0].header["GAIN"]
    pulls = []
    for p in cfg.science_paths():
        t = fits.getdata(layout.spectra(p), "SPECTRUM")
        good = t["DQ"] & 5 == 0                                   # not LOW_WEIGHT / NO_DATA
        pulls.append(((t["FLUX"] - scale[p.name] * flux_e / gain) / t["FLUX_ERR"])[good])
    pulls = np.concatenate(pulls)
    width = 1.4826 * np.median(np.abs(pulls - np.median(pulls)))
    assert 0.8 < width < 1.25, width


def test_one_and_two_ranks_give_identical_products(tiny6, tmp_path):
    config, layout = tiny6
    cfg = load_config(config)
    one = _products(layout, cfg)
    config2, layout2 = _copy_run(config, layout, tmp_path)
    run_script("6_Spectra.py", "--config", config2, "--overwrite", ranks=2)
    run_script("7_Transit_Fit.py", "--config", config2, "--overwrite", ranks=2)
    two = _products(layout2, load_config(config2))
    assert one.keys() == two.keys()
    for name in one:
        for a, b in zip(one[name], two[name]):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("breakage, names", [
    ("no_fits", "final_fits"),
    ("window", "transit_mid"),
    ("wavelengths", "wavelength_solution"),
    ("wavelength_kind", "wavelength_solution"),
    ("no_err", "5_Infill.py"),
])
def test_bad_input_one_line_naming_it_and_nothing_written(tiny6, tmp_path, breakage, names):
    config, layout = tiny6
    config2, layout2 = _copy_run(config, layout, tmp_path)
    for path in [*layout2.root.glob("spectra/*"), layout2.light_curves, layout2.transit_depths]:
        path.unlink()
    science = load_config(config2).science_paths()
    text = config2.read_text()
    if breakage == "no_fits":
        layout2.final_fits(science[2]).unlink()
    elif breakage == "window":
        text += "transit_mid: 59000.0\n"
    elif breakage == "wavelengths":
        text += "wavelength_solution: [3000.0, -50.0]\n"
    elif breakage == "wavelength_kind":
        text += "wavelength_solution: 2479 A + 0.4 A per column\n"
    elif breakage == "no_err":
        with fits.open(layout2.final(science[1])) as hdul:
            hdus = [h.copy() for h in hdul if h.name not in ("ERR", "DQ")]
        fits.HDUList(hdus).writeto(layout2.final(science[1]), overwrite=True)
    config2.write_text(text)                 # a key given twice: YAML keeps the last
    proc = run_script("6_Spectra.py", "--config", config2, check=False)
    assert proc.returncode == 1
    message = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(message) == 1 and names in message[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(layout2.root.glob("spectra/*"))
    assert not layout2.light_curves.exists() and not layout2.transit_depths.exists()
