"""Figures of stage 5 (infill and cosmic-ray removal) of one Final Frame.

Reproduces the seed's *Final_Frame_After_Infill* and
*Final_Frame_After_Infill_And_CR_Removal* in one figure
(``final_infill_and_cosmic.png``, :func:`plot_final_infill`), with the
infilled and cosmic-ray pixels marked (by detector).  No seed figure:
``cosmic_time_series.png`` (:func:`plot_cosmic_series`), one trace pixel's
series, its prediction and the frames flagged as cosmic rays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from matplotlib import colors as mcolors
from matplotlib.patches import Patch
from scipy import ndimage

from ..io.fitsio import read_image
from ..flags import DQFlag
from ..science.noise import error_model
from ..runtime.layout import Layout
from ..io.products import FinalFrame, read_spectral_mask
from ..stages.series import stage5_series
from .drawing import (BAD_COLOUR, XLABEL, new_figure, outline, scalar_mappable, show, trace_rows,
                      zscale)
from .inputs import FigureSpec

__all__ = ["FINAL_INFILL", "COSMIC_SERIES", "plot_final_infill", "plot_cosmic_series",
           "rebuild_infill"]

FINAL_INFILL = FigureSpec("final_infill_and_cosmic.png",
                          needs=("matches", "final_no_infill", "final"))
COSMIC_SERIES = FigureSpec("cosmic_time_series.png",
                           needs=("matches", "background", "final_no_infill", "final_fits", "final"))


def rebuild_infill(final_no_infill, final):
    """The Final Frame after infill, before cosmic-ray removal, from stage 5's own products.

    Stage 5 replaces the ``INFILLED`` pixels by its prediction, then the
    ``COSMIC`` ones (time series or L.A.Cosmic) and the ring around them (DQ
    ``COSMIC_GROWN``); so the frame after infill is the stored frame with
    those pixels given back their values from before stage 5.

    Parameters
    ----------
    final_no_infill, final : Path
        The Final Frame before stage 5 and stage 5's file.

    Returns
    -------
    before, filled, cleaned : ndarray of float32
        Before stage 5, after infill, after cosmic-ray removal.
    infilled, cosmic : ndarray of bool
        The pixels infilled, and those found as cosmic rays.
    dq : ndarray of int
        Stage 5's data-quality bits (:class:`~proxy_pixel_pipeline.flags.DQFlag`).
    """
    before = read_image(final_no_infill)
    frame = FinalFrame.read(final)
    cleaned, infilled, cosmic = frame.data, frame.infilled, frame.cosmic
    dq = frame.dq.astype(np.int64)
    filled = cleaned.copy()
    restore = (cosmic | ((dq & DQFlag.COSMIC_GROWN) != 0)) & np.isfinite(before)
    filled[restore] = before[restore]
    return before, filled, cleaned, infilled, cosmic, dq


@FINAL_INFILL.draws
def plot_final_infill(config, frame_index=None, out_dir=None) -> Path:
    """Final Frame after infill and after cosmic-ray removal, changed pixels marked.

    Reproduces the seed's *Final_Frame_After_Infill* and
    *Final_Frame_After_Infill_And_CR_Removal*.  Panels, top to bottom: the
    Final Frame after infill (from stage 5's products, :func:`rebuild_infill`);
    a map of the pixels stage 5 changed (infilled because empty, infilled
    because negative, cosmic ray found along the time series or by
    L.A.Cosmic, next to a cosmic ray); the frame after cosmic-ray removal with
    the cosmic-ray pixels outlined (blue: time series, magenta: L.A.Cosmic,
    light blue: the ring around them); and a zoom on
    the largest cosmic ray before and after, infilled pixels outlined red.  The three image panels share one stretch.

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration.
    frame_index : int, optional
        Science frame (position in ``config.science_paths()``); default 0.
    out_dir : str or Path, optional
        Output folder; default ``output_dir/figures``.

    Returns
    -------
    Path
        ``final_infill_and_cosmic.png``.

    Raises
    ------
    PipelineError
        A needed file is missing.
    """
    run = FINAL_INFILL.open(config, frame_index, out_dir)
    mask = read_spectral_mask(run.paths["matches"])
    before, filled, cleaned, infilled, cosmic, dq = rebuild_infill(run.paths["final_no_infill"],
                                                                   run.paths["final"])
    by_series = cosmic & ((dq & DQFlag.COSMIC_TEMPORAL) != 0)
    ring = (dq & DQFlag.COSMIC_GROWN) != 0
    was_empty = infilled & ~np.isfinite(before)
    was_negative = infilled & np.isfinite(before)

    lo, hi = trace_rows(mask)
    norm = zscale(cleaned[lo:hi])
    name = run.science.name
    fig = new_figure((12, 11.5))
    grid = fig.add_gridspec(4, 2, height_ratios=[1, 1, 1, 1.3], hspace=0.55, wspace=0.18)
    ax1 = fig.add_subplot(grid[0, :])
    show(ax1, filled, f"Final Frame {name} after infill ({int(infilled.sum())} pixels infilled "
         f"from the series' prediction)", rows=(lo, hi), norm=norm)

    # Map of the pixels stage 5 changed.
    ax2 = fig.add_subplot(grid[1, :], sharex=ax1)
    category = np.where(mask, 0.0, np.nan)
    category[was_negative] = 1
    category[was_empty] = 2
    category[cosmic] = 3
    category[by_series] = 4
    category[ring] = 5
    palette = ["#d9d9d9", "#fd8d3c", "#e41a1c", "#c51b8a", "#2171b5", "#9ecae1"]
    cmap = mcolors.ListedColormap(palette).with_extremes(bad=BAD_COLOUR)
    ax2.imshow(np.ma.masked_invalid(category[lo:hi]), cmap=cmap,
               norm=mcolors.BoundaryNorm(np.arange(-0.5, len(palette)), cmap.N), origin="lower",
               interpolation="nearest", aspect="auto",
               extent=(-0.5, before.shape[1] - 0.5, lo - 0.5, hi - 0.5))
    ax2.set_title(f"Pixels changed by stage 5 in {name} (spectral mask only)", fontsize=10)
    ax2.set_ylabel(ax1.get_ylabel())
    handles = [Patch(color=palette[0], label="unchanged"),
               Patch(color=palette[1], label=f"infilled (negative): {int(was_negative.sum())}"),
               Patch(color=palette[2], label=f"infilled (empty): {int(was_empty.sum())}"),
               Patch(color=palette[3], label=f"CR, L.A.Cosmic: {int((cosmic & ~by_series).sum())}"),
               Patch(color=palette[4], label=f"CR, time series: {int(by_series.sum())}"),
               Patch(color=palette[5], label=f"next to a CR: {int(ring.sum())}")]
    ax2.legend(handles=handles, loc="lower center", ncol=6, fontsize=7, framealpha=0.9)
    # An invisible colour bar keeps this panel as wide as the image panels.
    spacer = fig.colorbar(scalar_mappable(cmap, 0, 1), ax=ax2, pad=0.01, fraction=0.05)
    spacer.ax.set_visible(False)

    ax3 = fig.add_subplot(grid[2, :], sharex=ax1)
    show(ax3, cleaned, f"Final Frame {name} after infill and cosmic-ray removal "
         f"({int(cosmic.sum())} cosmic-ray pixels: time series blue, L.A.Cosmic magenta; "
         f"{int(ring.sum())} next to them, light blue)", rows=(lo, hi), norm=norm)
    outline(ax3, ring, "#9ecae1", lw=0.8)
    outline(ax3, cosmic & ~by_series, "magenta", lw=1.0)
    outline(ax3, by_series, "#2171b5", lw=1.0)
    ax3.set_xlabel(XLABEL)

    # Zoom on the largest cosmic ray (else on the largest infilled patch).
    target = cosmic if cosmic.any() else was_empty if was_empty.any() else infilled
    what = "largest cosmic ray" if cosmic.any() else "largest infilled patch"
    if target.any():
        labels, n = ndimage.label(target, structure=np.ones((3, 3)))   # diagonal tracks too
        sizes = ndimage.sum_labels(target, labels, index=np.arange(1, n + 1))
        ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
        xc = int(np.median(xs))
    else:
        what = "middle of the trace"
        xc = before.shape[1] // 2
    half = max(8, min(32, before.shape[1] // 8))
    x0 = int(np.clip(xc - half, 0, max(before.shape[1] - 2 * half, 0)))
    x1 = min(before.shape[1], x0 + 2 * half)
    for k, (image, title) in enumerate(((filled, "after infill"),
                                        (cleaned, "after cosmic-ray removal"))):
        ax = fig.add_subplot(grid[3, k])
        show(ax, image, f"{what}, columns {x0}-{x1 - 1}: {title}", rows=(lo, hi),
             columns=(x0, x1), norm=norm)
        outline(ax, infilled, "red", lw=0.8)
        outline(ax, ring, "#9ecae1", lw=0.8)
        outline(ax, cosmic & ~by_series, "magenta", lw=1.5)
        outline(ax, by_series, "#2171b5", lw=1.5)
        ax.set_xlabel(XLABEL)
        if k:
            ax.set_ylabel("")
    return run.save(fig)


@COSMIC_SERIES.draws
def plot_cosmic_series(config, frame_index=None, out_dir=None) -> Path:
    """One trace pixel's time series with the frames in which it was a cosmic ray.

    The pixel is the brightest trace pixel found along the time series in
    the chosen frame (else in any frame).  Top: its Final Frame value in
    every frame (before stage 5), the series' prediction
    (:func:`~proxy_pixel_pipeline.science.series.series_prediction`, made as stage 5
    makes it) with its ``temporal_sigma`` band, the frames flagged by the time
    series (blue) and by L.A.Cosmic (magenta).  Bottom: the z-scores against
    the threshold.

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration.
    frame_index : int, optional
        Science frame whose hits choose the pixel; default 0.
    out_dir : str or Path, optional
        Output folder; default ``output_dir/figures``.

    Returns
    -------
    Path
        ``cosmic_time_series.png``.
    """
    run = COSMIC_SERIES.open(config, frame_index, out_dir)
    cfg, layout = run.cfg, Layout(run.cfg.output_dir)
    paths = cfg.science_paths()
    series = stage5_series(cfg, layout, paths)
    dq = np.stack([fits.getdata(layout.final(p), "DQ").ravel()[series["trace"]] for p in paths])
    temporal = (dq & DQFlag.COSMIC_TEMPORAL) != 0
    lacosmic = (dq & DQFlag.COSMIC_LACOSMIC) != 0
    shown = paths.index(run.science)
    candidates = temporal[shown] if temporal[shown].any() else temporal.any(axis=0)
    if not candidates.any():
        candidates = lacosmic.any(axis=0) if lacosmic.any() else np.ones(len(series["trace"]), bool)
    brightness = np.where(candidates, np.nanmedian(series["prediction"], axis=0), -np.inf)
    k = int(np.argmax(brightness))
    y, x = np.unravel_index(series["trace"][k], series["region"].shape)
    frames = np.arange(len(paths))
    value, prediction = series["final"][:, k], series["prediction"][:, k]
    sigma = error_model(np.maximum(prediction, 0.0), series["noise"][:, k], cfg.gain)

    fig = new_figure((10, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    band = cfg.temporal_sigma or 5.0
    top.fill_between(frames, prediction - band * sigma, prediction + band * sigma, color="0.85",
                     label=f"prediction +/- {band:g} sigma")
    top.plot(frames, prediction, color="0.3", lw=1.2, label="prediction from the series")
    top.plot(frames, value, "o", color="k", ms=4, label="Final Frame value (before stage 5)")
    top.plot(frames[temporal[:, k]], value[temporal[:, k]], "o", ms=9, mfc="none", mew=2,
             color="#2171b5", label="cosmic ray: time series")
    top.plot(frames[lacosmic[:, k]], value[lacosmic[:, k]], "s", ms=9, mfc="none", mew=2,
             color="#c51b8a", label="cosmic ray: L.A.Cosmic")
    top.axvline(shown, color="0.6", ls=":", lw=1)
    top.set_ylabel("ADU")
    top.set_title(f"Trace pixel (row {y}, column {x}) over the {len(paths)} science frames",
                  fontsize=10)
    top.legend(fontsize=8, loc="best")
    bottom.plot(frames, series["z"][:, k], "o-", color="k", ms=3, lw=0.8)
    bottom.axhline(band, color="#2171b5", ls="--", lw=1, label=f"temporal_sigma = {band:g}")
    bottom.axhline(0, color="0.6", lw=0.8)
    bottom.set_ylabel("(value - prediction) / sigma")
    bottom.set_xlabel("science frame (position in science_frames)")
    bottom.legend(fontsize=8, loc="best")
    return run.save(fig)
