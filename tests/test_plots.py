"""Figures of a run: every file is written, non-trivial, and missing stages are skipped."""

import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from matplotlib import image as mpimg
from PIL import Image

from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.errors import PipelineError
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.plots import FIGURE_NAMES, make_figures
from proxy_pixel_pipeline.simulate import simulate

from conftest import ROOT, run_script


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny simulated data set run through every stage in this process."""
    from proxy_pixel_pipeline.runtime.parallel import world
    from proxy_pixel_pipeline.runtime.registry import STAGES

    folder = tmp_path_factory.mktemp("plots") / "tiny"
    simulate(folder, preset="tiny", seed=1)
    cfg = load_config(folder / "config.yaml")
    for stage in STAGES:
        stage.load_runner()(cfg, world(), overwrite=True).run()
    return folder


def _check_png(path):
    assert path.stat().st_size > 5000, f"{path.name} is only {path.stat().st_size} bytes"
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 200
    assert np.std(pixels) > 0.02, f"{path.name} looks uniform"


def _check_gif(path, n_frames):
    assert path.stat().st_size > 5000
    with Image.open(path) as gif:
        assert gif.n_frames == n_frames
        first = np.asarray(gif.convert("RGB"), float)
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"), float)
    assert first.std() > 5 and last.std() > 5
    assert np.any(first != last), f"{path.name}: first and last frames are identical"


def test_make_figures_writes_every_figure(tiny_run):
    cfg = load_config(tiny_run / "config.yaml")
    written = make_figures(cfg, frame_index=1)
    figures = Layout(cfg.output_dir).figures
    assert [p.name for p in written] == list(FIGURE_NAMES)
    assert all(p.parent == figures for p in written)
    n_bins = -(-64 // cfg.bin_width)               # tiny frames have 64 columns
    for path in written:
        if path.suffix == ".png":
            _check_png(path)
        else:
            _check_gif(path, n_bins)


def test_missing_stage5_is_skipped_with_a_message(tiny_run, tmp_path, caplog):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy, ignore=shutil.ignore_patterns("figures"))
    shutil.rmtree(copy / "output" / "final")
    logger = logging.getLogger("proxy_pixel_pipeline")
    attach = not logger.propagate                  # setup_logging() turns propagation off
    if attach:
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="proxy_pixel_pipeline"):
            written = make_figures(copy / "config.yaml", out_dir=tmp_path / "figs")
    finally:
        if attach:
            logger.removeHandler(caplog.handler)
    names = [p.name for p in written]
    stage5 = {"final_infill_and_cosmic.png", "cosmic_time_series.png"}     # both read final/
    assert not stage5 & set(names)
    assert set(names) == set(FIGURE_NAMES) - stage5           # stage 6's figures read its own
    assert all((tmp_path / "figs" / n).is_file() for n in names)
    assert not (copy / "output" / "figures").exists()
    skipped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(skipped) == 2
    assert "plot_final_infill skipped" in skipped[0] and "run 5_Infill.py first" in skipped[0]
    assert "plot_cosmic_series skipped" in skipped[1] and "run 5_Infill.py first" in skipped[1]


def test_outputs_that_no_longer_fit_the_config_are_skipped(tiny_run, tmp_path, caplog):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy, ignore=shutil.ignore_patterns("figures"))
    config = copy / "config.yaml"
    config.write_text(config.read_text() + "\nbin_width: 7\n")    # fits made with another
    logger = logging.getLogger("proxy_pixel_pipeline")
    attach = not logger.propagate
    if attach:
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="proxy_pixel_pipeline"):
            written = make_figures(config, out_dir=tmp_path / "figs")
    finally:
        if attach:
            logger.removeHandler(caplog.handler)
    names = {p.name for p in written}
    assert "spectral_vs_nonspectral.png" in names and "final_fits.gif" not in names
    skipped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert skipped and all("skipped" in m and "rerun" in m for m in skipped)


def test_bad_frame_index_is_a_pipeline_error(tiny_run):
    with pytest.raises(PipelineError, match="frame index 99 out of range"):
        make_figures(tiny_run / "config.yaml", frame_index=99, out_dir=tiny_run / "unused")


def test_script_prints_the_written_paths(tiny_run, tmp_path):
    proc = run_script("make_figures.py", "--config", tiny_run / "config.yaml", "--frame", "-1",
                      "--out-dir", tmp_path)
    printed = proc.stdout.split()
    assert sorted(printed) == sorted(str(tmp_path / n) for n in FIGURE_NAMES)
    bad = run_script("make_figures.py", "--config", tmp_path / "nope.yaml", check=False)
    assert bad.returncode == 1 and "config file not found" in bad.stderr


def test_figures_do_not_initialize_mpi(tiny_run, tmp_path):
    """make_figures.py runs on a login node: it must not import mpi4py."""
    code = ("import sys; from proxy_pixel_pipeline.plots import make_figures; "
            f"make_figures({str(tiny_run / 'config.yaml')!r}, out_dir={str(tmp_path)!r}); "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert proc.returncode == 0, proc.stderr
