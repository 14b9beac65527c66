"""Stage 6's figures: drawn from a real tiny run, with the box, batman and no transit model."""

import math
import shutil

import pytest

from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.errors import PipelineError
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.plots import (make_figures, plot_light_curve_2d, plot_spectrum,
                                        plot_transmission_spectrum, plot_white_light_curve)
from proxy_pixel_pipeline.simulate import simulate

from test_plots import _check_png

FIGURES = ("spectrum.png", "light_curve_2d.png", "white_light_curve.png",
           "transmission_spectrum.png")


def _run_stages(config, numbers=range(1, 7)):
    from proxy_pixel_pipeline.runtime.parallel import world
    from proxy_pixel_pipeline.runtime.registry import STAGES

    cfg = load_config(config)
    for n in numbers:
        STAGES[n - 1].load_runner()(cfg, world(), overwrite=True).run()


@pytest.fixture(scope="module")
def tiny6(tmp_path_factory):
    """A tiny simulated data set run through all six stages in this process (read-only)."""
    folder = tmp_path_factory.mktemp("figs6") / "tiny"
    simulate(folder, preset="tiny", seed=1)
    _run_stages(folder / "config.yaml")
    return folder


@pytest.fixture
def copy6(tiny6, tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny6, folder, ignore=shutil.ignore_patterns("figures"))
    return folder


def test_every_stage6_figure_is_drawn(tiny6, tmp_path):
    config = tiny6 / "config.yaml"
    written = [plot_spectrum(config, frame_index=-1, out_dir=tmp_path),
               plot_light_curve_2d(config, out_dir=tmp_path),
               plot_white_light_curve(config, out_dir=tmp_path),
               plot_transmission_spectrum(config, out_dir=tmp_path)]
    assert [p.name for p in written] == list(FIGURES)
    for path in written:
        _check_png(path)
    names = [p.name for p in make_figures(config, out_dir=tmp_path / "all")]
    assert names[-4:] == list(FIGURES)


def _with_keys(config, **keys):
    text = config.read_text()
    for key, value in keys.items():
        lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key}:")]
        text = "\n".join(lines) + f"\n{key}: {value}\n"
    config.write_text(text)


def test_batman_model_is_drawn(copy6, tmp_path):
    config = copy6 / "config.yaml"
    cfg = load_config(config)
    period = 1.5
    a_rs = period * 1.1 / (math.pi * cfg.transit_duration)      # central transit this long
    _with_keys(config, transit_model="batman", planet_period=period, planet_a_rs=a_rs,
               planet_inclination=90.0, limb_darkening="[0.4, 0.2]")
    with pytest.raises(PipelineError, match="rerun 6_Spectra.py"):   # depths from the box fit
        plot_white_light_curve(config, out_dir=tmp_path)
    _run_stages(config, [6])
    _check_png(plot_white_light_curve(config, out_dir=tmp_path))
    _check_png(plot_transmission_spectrum(config, out_dir=tmp_path))


def test_without_a_transit_model_the_light_curve_alone_is_drawn(copy6, tmp_path):
    config = copy6 / "config.yaml"
    _with_keys(config, transit_model="none")
    _run_stages(config, [6])
    _check_png(plot_white_light_curve(config, out_dir=tmp_path / "figs"))
    names = [p.name for p in make_figures(config, out_dir=tmp_path / "all")]
    assert {"spectrum.png", "light_curve_2d.png", "white_light_curve.png"} <= set(names)
    if not Layout(load_config(config).output_dir).transit_depths.is_file():
        assert "transmission_spectrum.png" not in names


def test_a_changed_transit_window_is_refused(copy6, tmp_path):
    config = copy6 / "config.yaml"
    cfg = load_config(config)
    _with_keys(config, transit_duration=cfg.transit_duration * 0.5)
    with pytest.raises(PipelineError, match="rerun 6_Spectra.py"):
        plot_white_light_curve(config, out_dir=tmp_path)
