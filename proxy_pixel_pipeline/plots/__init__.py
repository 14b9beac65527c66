"""Diagnostic figures of a pipeline run, as in the method's write-up.

Every figure is made with matplotlib's Agg canvas (no display, no pyplot
state) from the files a run wrote under ``output_dir`` and goes into
``output_dir/figures/``.  :func:`make_figures` writes them all; each has its
own function, in the module of the stage whose products it shows:

* :mod:`.matches` (stage 1)

  - ``spectral_vs_nonspectral.png`` (:func:`plot_pixel_map`): seed figure
    *Spectral_vs_NonSpectral_Pixels*, the spectral mask against the rest of
    the CCD, with the pixels excluded from matching (hot, ...) marked.
  - ``proxy_match_comparison.png`` (:func:`plot_proxy_match`): seed figures
    *Proxy_Match_Comparison*, *Proxy_Match_Comparison_Residuals* and
    *Proxy_Match_Comparison_Residuals_Histogram* as three panels: one matched
    pair's dark series, their residual, and its histogram.

* :mod:`.frames` (stage 2)

  - ``frames_science_dark_background_final.png`` (:func:`plot_frames`): seed
    figures *Original_Science_Image_Pre_Infill_Combined*,
    *Dark_Frame_Combined*, *Recreated_Back_Combined* and
    *Final_Frame_Before_Infill_Combined*: Science, Dark, Background and Final
    Frame (before infill) of one frame.

* :mod:`.median_fits` (stage 3)

  - ``median_frame.png`` (:func:`plot_median_frame`): seed figure
    *Median_Frame_Combined*.
  - ``bin_columns_vs_median.png`` (:func:`plot_bin_columns`): seed figure
    *Raw_Column_vs_Median_Column_Traces*, the columns of one bin against the
    bin's median profile.
  - ``median_fits.gif`` (:func:`animate_median_fits`): seed animation
    *Median_Fits.gif*, the double-Gaussian fits of the Median Frame's bins.

* :mod:`.final_fits` (stage 4)

  - ``final_fits.gif`` (:func:`animate_final_fits`): seed animation
    *Final_Fits_GIF.gif*, the fits of one Final Frame's bins, with the Median
    Frame fit's shape for comparison.

* :mod:`.infill` (stage 5)

  - ``final_infill_and_cosmic.png`` (:func:`plot_final_infill`): seed figures
    *Final_Frame_After_Infill* and *Final_Frame_After_Infill_And_CR_Removal*,
    with the infilled and cosmic-ray pixels marked (by detector).
  - ``cosmic_time_series.png`` (:func:`plot_cosmic_series`): one trace
    pixel's series, its prediction and the frames flagged as cosmic rays.

* :mod:`.spectra` (stage 6)

  - ``spectrum.png`` (:func:`plot_spectrum`): one frame's optimal and box
    spectra with their error bands.
  - ``light_curve_2d.png`` (:func:`plot_light_curve_2d`): the channel light
    curves, frames by channels.
  - ``white_light_curve.png`` (:func:`plot_white_light_curve`): the white
    light curve with the transit window and the fitted model (box or batman,
    as configured).
  - ``transmission_spectrum.png`` (:func:`plot_transmission_spectrum`): the
    transit depth of every channel against wavelength, with the white depth.

:mod:`.drawing` holds the drawing helpers they share and :mod:`.inputs` the
declaration of what each figure reads (:class:`~.inputs.FigureSpec`: the
registry's output names, from which the "run N_Script.py first" hints come).

Conventions: images are shown with row 0 at the bottom (as in DS9), columns
along the dispersion axis and rows across it; their stretch is the robust
ZScale of the displayed pixels (:class:`astropy.visualization.ZScaleInterval`,
kept within the 0.5-99.8 percentiles) with a colour bar in ADU; empty (NaN)
pixels are white.  The trace occupies a small band of rows, so most images
show the full width but only the rows of the spectral mask plus a margin
(:func:`trace_rows`).

Every function takes the configuration (a :class:`~proxy_pixel_pipeline.runtime.config.Config`
or the path of its YAML file), optionally ``frame_index`` (position of the
science frame in ``config.science_paths()``, default 0) and ``out_dir``
(default ``Layout(output_dir).figures``), and returns the written path.  A
figure whose inputs are missing raises
:class:`~proxy_pixel_pipeline.errors.PipelineError` naming the file;
:func:`make_figures` instead skips it with a log message.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PipelineError
from ..runtime.layout import Layout
from ..runtime.logs import get_logger
from .drawing import trace_rows
from .final_fits import animate_final_fits
from .frame_images import plot_frames
from .cleaning import plot_cosmic_series, plot_final_infill
from .inputs import as_config, science_path, stage_script
from .matches import plot_pixel_map, plot_proxy_match
from .median_fits import animate_median_fits, plot_bin_columns, plot_median_frame
from .spectra import (plot_light_curve_2d, plot_spectrum, plot_transmission_spectrum,
                      plot_white_light_curve)

__all__ = [
    "FIGURE_NAMES",
    "make_figures",
    "plot_pixel_map",
    "plot_proxy_match",
    "plot_frames",
    "plot_median_frame",
    "plot_bin_columns",
    "animate_median_fits",
    "animate_final_fits",
    "plot_final_infill",
    "plot_cosmic_series",
    "plot_spectrum",
    "plot_light_curve_2d",
    "plot_white_light_curve",
    "plot_transmission_spectrum",
    "trace_rows",
]

# The figures in the order make_figures writes them; each carries its FigureSpec.
_FIGURES = (plot_pixel_map, plot_proxy_match, plot_frames, plot_median_frame, plot_bin_columns,
            animate_median_fits, animate_final_fits, plot_final_infill, plot_cosmic_series,
            plot_spectrum, plot_light_curve_2d, plot_white_light_curve, plot_transmission_spectrum)

#: File names of the figures, in the order :func:`make_figures` writes them.
FIGURE_NAMES = tuple(f.spec.filename for f in _FIGURES)


def make_figures(config, frame_index=None, out_dir=None) -> list[Path]:
    """Write every diagnostic figure of a run whose inputs exist.

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration, or its YAML file.
    frame_index : int, optional
        Position of the science frame shown in the per-frame figures in
        ``config.science_paths()`` (negative counts from the end); default 0.
    out_dir : str or Path, optional
        Folder for the figures; default ``output_dir/figures``.

    Returns
    -------
    list of Path
        The files written, in the order of :data:`FIGURE_NAMES` (a figure
        whose inputs are missing, unreadable or made with other settings is
        skipped with a warning in the log).

    Raises
    ------
    PipelineError
        Unreadable configuration, no science frame, or ``frame_index`` out of
        range.
    """
    cfg = as_config(config)
    layout = Layout(cfg.output_dir)
    log = get_logger()
    science = science_path(cfg, frame_index)
    frame_index = cfg.science_paths().index(science)
    written = []
    for func in _FIGURES:
        spec = func.spec
        missing = spec.missing(layout, science)
        if missing:
            name, path = missing[0]
            log.warning("figure %s skipped: %s is missing (run %s first)",
                        func.__name__, path, stage_script(name))
            continue
        kwargs = {"frame_index": frame_index} if spec.per_frame else {}
        try:
            path = func(cfg, out_dir=out_dir, **kwargs)
        except PipelineError as exc:       # e.g. an output older than the config: go on
            log.warning("figure %s skipped: %s", func.__name__, exc)
            continue
        log.info("wrote %s", path)
        written.append(path)
    return written
