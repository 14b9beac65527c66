"""Stage 7 (7_Transit_Fit.py) as users run it: joint visits, bad input, products."""

import shutil

import numpy as np
import pytest

from proxy_pixel_pipeline.io.transit_products import read_depths, read_samples, read_transit_fit
from proxy_pixel_pipeline.runtime import registry
from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.simulate import simulate

from conftest import run_script

QUICK = "fit_sampler: lsq\n"


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    """A tiny visit through stage 6."""
    folder = simulate(tmp_path_factory.mktemp("stage7") / "visit1", preset="tiny", seed=31)
    config = folder / "config.yaml"
    config.write_text(config.read_text() + QUICK)
    for stage in registry.STAGES[:6]:
        run_script(stage.script, "--config", config)
    return config


def _copy(config, where, keep_outputs=True):
    target = where / config.parent.name
    shutil.copytree(config.parent, target, symlinks=True,
                    ignore=None if keep_outputs else shutil.ignore_patterns("output"))
    return target / "config.yaml"


def _stage7_outputs(config):
    layout = Layout(load_config(config).output_dir)
    return [layout.transit_depths, layout.transit_fit, layout.transit_samples]


def test_one_visit_writes_the_documented_products(visit, tmp_path):
    config = _copy(visit, tmp_path)
    run_script("7_Transit_Fit.py", "--config", config)
    depths_path, fit_path, samples_path = _stage7_outputs(config)
    depths = read_depths(depths_path)
    assert list(depths["CHANNEL"]) == ["white", "0"]
    assert np.all(depths["RP_RS_ERR_LO"] > 0) and np.all(depths["RP_RS_ERR_HI"] > 0)
    np.testing.assert_allclose(depths["DEPTH"], depths["RP_RS"] * np.abs(depths["RP_RS"]),
                               rtol=0.05, atol=1e-4)
    visits, detrended = read_transit_fit(fit_path)
    assert set(visits["CHANNEL"]) == {"white", "0"} and len(detrended) == 1
    table = next(iter(detrended.values()))
    assert table["DETRENDED"].shape == (len(load_config(config).science_paths()), 2)
    white, rp = read_samples(samples_path)
    assert "rp_rs" in white.colnames and rp.shape[0] == 2


def test_two_identical_visits_halve_the_variance(visit, tmp_path):
    one = _copy(visit, tmp_path / "a")
    run_script("7_Transit_Fit.py", "--config", one)
    single = read_depths(_stage7_outputs(one)[0])["RP_RS_ERR_HI"][0]
    first = _copy(visit, tmp_path / "b")
    second = first.parent.parent / "visit2" / "config.yaml"
    shutil.copytree(first.parent, second.parent, symlinks=True)
    first.write_text(first.read_text() + "joint_visits: [../visit2/config.yaml]\n")
    run_script("7_Transit_Fit.py", "--config", first)
    joint = read_depths(_stage7_outputs(first)[0])
    assert joint["N_VISITS"][0] == 2
    assert joint["RP_RS_ERR_HI"][0] == pytest.approx(single / np.sqrt(2), rel=0.25)


@pytest.mark.parametrize("breakage, names", [
    ("joint_without_stage6", "visit2/config.yaml"),
    ("band_off_detector", "channel_wavelengths"),
    ("missing_planet_key", "planet_period"),
    ("no_transit_model", "transit_model"),
])
def test_bad_input_one_line_naming_it_and_nothing_written(visit, tmp_path, breakage, names):
    config = _copy(visit, tmp_path)
    text = config.read_text()
    script = "7_Transit_Fit.py"
    if breakage == "joint_without_stage6":
        other = _copy(visit, tmp_path / "elsewhere", keep_outputs=False)
        target = config.parent.parent / "visit2"
        shutil.move(str(other.parent), target)
        text += "joint_visits: [../visit2/config.yaml]\n"
    elif breakage == "band_off_detector":
        text += "channel_wavelengths: [[2500.0, 2600.0], [3200.0, 3900.0]]\n"
        script = "6_Spectra.py"
    elif breakage == "missing_planet_key":
        text = text.replace("transit_model: box", "transit_model: batman")
    elif breakage == "no_transit_model":
        text = text.replace("transit_model: box", "transit_model: none")
    config.write_text(text)
    before = {p: p.stat().st_mtime_ns for p in config.parent.rglob("output/*") if p.is_file()}
    proc = run_script(script, "--config", config, "--overwrite", check=False)
    assert proc.returncode == 1
    message = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(message) == 1 and names in message[0], proc.stderr
    assert "Traceback" not in proc.stderr
    after = {p: p.stat().st_mtime_ns for p in config.parent.rglob("output/*") if p.is_file()}
    assert after == before                     # nothing written, nothing removed
    assert not (config.parent / "output" / ".staging").exists()
