"""Stage 6's and 7's figures: drawn from a real tiny run, with the box, batman and no transit
model."""

import math
import shutil

import pytest

from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.errors import PipelineError
from proxy_pixel_pipeline.plots import (make_figures, plot_corner, plot_detrended,
                                        plot_light_curve_2d, plot_residual_rms, plot_spectrum,
                                        plot_transmission_spectrum, plot_visits,
                                        plot_white_light_curve)
from proxy_pixel_pipeline.simulate import simulate

from test_plots import _check_png

FIGURES = ("spectrum.png", "light_curve_2d.png", "white_light_curve.png")
STAGE7 = ("transit_fit_visits.png", "transit_fit_detrended.png", "transit_fit_rms.png",
          "transit_fit_corner.png", "transmission_spectrum.png")


def _run_stages(config, numbers=range(1, 8)):
    from proxy_pixel_pipeline.runtime.parallel import world
    from proxy_pixel_pipeline.runtime.registry import STAGES

    cfg = load_config(config)
    for n in numbers:
        STAGES[n - 1].load_runner()(cfg, world(), overwrite=True).run()


@pytest.fixture(scope="module")
def tiny6(tmp_path_factory):
    """A tiny simulated data set run through all seven stages in this process (read-only)."""
    folder = tmp_path_factory.mktemp("figs6") / "tiny"
    simulate(folder, preset="tiny", seed=1)
    _run_stages(folder / "config.yaml")
    return folder


@pytest.fixture
def copy6(tiny6, tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny6, folder, ignore=shutil.ignore_patterns("figures"))
    return folder


def test_every_stage6_and_7_figure_is_drawn(tiny6, tmp_path):
    config = tiny6 / "config.yaml"
    written = [plot_spectrum(config, frame_index=-1, out_dir=tmp_path),
               plot_light_curve_2d(config, out_dir=tmp_path),
               plot_white_light_curve(config, out_dir=tmp_path)]
    written += [f(config, out_dir=tmp_path) for f in (plot_visits, plot_detrended,
                                                      plot_residual_rms, plot_corner,
                                                      plot_transmission_spectrum)]
    assert [p.name for p in written] == list(FIGURES + STAGE7)
    for path in written:
        _check_png(path)
    names = [p.name for p in make_figures(config, out_dir=tmp_path / "all")]
    assert names[-8:] == list(FIGURES + STAGE7)


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
    with pytest.raises(PipelineError, match="rerun 7_Transit_Fit.py"):   # fitted with the box
        plot_detrended(config, out_dir=tmp_path)
    _run_stages(config, [6, 7])
    _check_png(plot_detrended(config, out_dir=tmp_path))
    _check_png(plot_transmission_spectrum(config, out_dir=tmp_path))


def test_without_a_transit_model_the_light_curve_alone_is_drawn(copy6, tmp_path):
    config = copy6 / "config.yaml"
    _with_keys(config, transit_model="none")
    _run_stages(config, [6])
    _check_png(plot_white_light_curve(config, out_dir=tmp_path / "figs"))
    names = [p.name for p in make_figures(config, out_dir=tmp_path / "all")]
    assert {"spectrum.png", "light_curve_2d.png", "white_light_curve.png"} <= set(names)
    assert not set(STAGE7) & set(names)          # stage 7's products are stale now


def test_a_changed_transit_window_is_refused(copy6, tmp_path):
    config = copy6 / "config.yaml"
    cfg = load_config(config)
    _with_keys(config, transit_duration=cfg.transit_duration * 0.5)
    with pytest.raises(PipelineError, match="rerun 6_Spectra.py"):
        plot_white_light_curve(config, out_dir=tmp_path)
    with pytest.raises(PipelineError, match="rerun 6_Spectra.py|rerun 7_Transit_Fit.py"):
        plot_transmission_spectrum(config, out_dir=tmp_path)
