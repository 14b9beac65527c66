"""Diagnostic figures of a pipeline run, as in the method's write-up.

Every figure is made with matplotlib's Agg canvas (no display, no pyplot
state) from the files a run wrote under ``output_dir`` and goes into
``output_dir/figures/``.  :func:`make_figures` writes them all; each has its
own function:

* ``spectral_vs_nonspectral.png`` (:func:`plot_pixel_map`): seed figure
  *Spectral_vs_NonSpectral_Pixels*, the spectral mask against the rest of
  the CCD, with the pixels excluded from matching (hot, ...) marked.
* ``proxy_match_comparison.png`` (:func:`plot_proxy_match`): seed figures
  *Proxy_Match_Comparison*, *Proxy_Match_Comparison_Residuals* and
  *Proxy_Match_Comparison_Residuals_Histogram* as three panels: one matched
  pair's dark series, their residual, and its histogram.
* ``frames_science_dark_background_final.png`` (:func:`plot_frames`): seed
  figures *Original_Science_Image_Pre_Infill_Combined*,
  *Dark_Frame_Combined*, *Recreated_Back_Combined* and
  *Final_Frame_Before_Infill_Combined*: Science, Dark, Background and Final
  Frame (before infill) of one frame.
* ``median_frame.png`` (:func:`plot_median_frame`): seed figure
  *Median_Frame_Combined*.
* ``bin_columns_vs_median.png`` (:func:`plot_bin_columns`): seed figure
  *Raw_Column_vs_Median_Column_Traces*, the columns of one bin against the
  bin's median profile.
* ``median_fits.gif`` (:func:`animate_median_fits`): seed animation
  *Median_Fits.gif*, the double-Gaussian fits of the Median Frame's bins.
* ``final_fits.gif`` (:func:`animate_final_fits`): seed animation
  *Final_Fits_GIF.gif*, the fits of one Final Frame's bins, with the Median
  Frame fit's shape for comparison.
* ``final_infill_and_cosmic.png`` (:func:`plot_final_infill`): seed figures
  *Final_Frame_After_Infill* and *Final_Frame_After_Infill_And_CR_Removal*,
  with the infilled and cosmic-ray pixels marked.

Conventions: images are shown with row 0 at the bottom (as in DS9), columns
along the dispersion axis and rows across it; their stretch is the robust
ZScale of the displayed pixels (:class:`astropy.visualization.ZScaleInterval`,
kept within the 0.5-99.8 percentiles) with a colour bar in ADU; empty (NaN)
pixels are white.  The trace occupies a
small band of rows, so most images show the full width but only the rows of
the spectral mask plus a margin (:func:`trace_rows`).

Every function takes the configuration (a :class:`~proxy_pixel_pipeline.config.Config`
or the path of its YAML file), optionally ``frame_index`` (position of the
science frame in ``config.science_paths()``, default 0) and ``out_dir``
(default ``Layout(output_dir).figures``), and returns the written path.  A
figure whose inputs are missing raises
:class:`~proxy_pixel_pipeline.errors.PipelineError` naming the file;
:func:`make_figures` instead skips it with a log message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.visualization import ImageNormalize, ZScaleInterval
from matplotlib import colors as mcolors
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .atomic import atomic_path
from .config import Config, load_config
from .errors import PipelineError
from .fits_io import read_image, read_mask, read_table
from .products import read_matches, read_profile_fits, read_spectral_mask
from .layout import Layout
from .logs import get_logger
from .profiles import FitFlag, binned_profiles, double_gaussian, model_frame

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
    "trace_rows",
]

#: File names of the figures, in the order :func:`make_figures` writes them.
FIGURE_NAMES = (
    "spectral_vs_nonspectral.png",
    "proxy_match_comparison.png",
    "frames_science_dark_background_final.png",
    "median_frame.png",
    "bin_columns_vs_median.png",
    "median_fits.gif",
    "final_fits.gif",
    "final_infill_and_cosmic.png",
)

_DPI = 130            # PNG resolution
_GIF_DPI = 80         # GIF resolution (frames of 560 x 360 pixels)
_GIF_FPS = 4
_MAX_GIF_FRAMES = 100
_CMAP = "viridis"
_BAD_COLOUR = "white"
_XLABEL = "column (dispersion axis) [pix]"
_YLABEL = "row (cross-dispersion) [pix]"


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

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
    cfg = _as_config(config)
    layout = Layout(cfg.output_dir)
    log = get_logger()
    science = _science_path(cfg, frame_index)
    frame_index = cfg.science_paths().index(science)
    steps = [
        (plot_pixel_map, False, [(layout.matches, "1_Proxy_Matches.py")]),
        (plot_proxy_match, False, [(layout.matches, "1_Proxy_Matches.py")]),
        (plot_frames, True, [(layout.background(science), "2_Frames.py"),
                             (layout.final_no_infill(science), "2_Frames.py")]),
        (plot_median_frame, False, [(layout.median_frame, "3_Median_Fits.py")]),
        (plot_bin_columns, False, [(layout.median_frame, "3_Median_Fits.py"),
                                   (layout.median_fits, "3_Median_Fits.py")]),
        (animate_median_fits, False, [(layout.median_fits, "3_Median_Fits.py")]),
        (animate_final_fits, True, [(layout.final_no_infill(science), "2_Frames.py"),
                                    (layout.median_fits, "3_Median_Fits.py"),
                                    (layout.final_fits(science), "4_Final_Fits.py")]),
        (plot_final_infill, True, [(layout.final_no_infill(science), "2_Frames.py"),
                                   (layout.final_fits(science), "4_Final_Fits.py"),
                                   (layout.final(science), "5_Infill.py")]),
    ]
    written = []
    for func, per_frame, needs in steps:
        missing = [(p, script) for p, script in needs if not Path(p).is_file()]
        if missing:
            path, script = missing[0]
            log.warning("figure %s skipped: %s is missing (run %s first)",
                        func.__name__, path, script)
            continue
        kwargs = {"frame_index": frame_index} if per_frame else {}
        try:
            path = func(cfg, out_dir=out_dir, **kwargs)
        except PipelineError as exc:       # e.g. an output older than the config: go on
            log.warning("figure %s skipped: %s", func.__name__, exc)
            continue
        log.info("wrote %s", path)
        written.append(path)
    return written


# --------------------------------------------------------------------------
# 1. Spectral vs non-spectral pixels
# --------------------------------------------------------------------------

def plot_pixel_map(config, out_dir=None) -> Path:
    """Map of spectral and non-spectral pixels with the excluded pixels marked.

    Reproduces the seed's *Spectral_vs_NonSpectral_Pixels*: the spectral mask
    (the trace) against the rest of the CCD, from stage 1's ``SPECMASK`` and
    ``PIXFLAGS``; spectral pixels left without a proxy (hot, too few valid
    darks, constant, no candidate: ``FLAG`` of the match table) and excluded
    non-spectral pixels (never used as proxies) are marked.  Top: whole
    frame; bottom: the trace rows.

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration.
    out_dir : str or Path, optional
        Output folder; default ``output_dir/figures``.

    Returns
    -------
    Path
        ``spectral_vs_nonspectral.png``.
    """
    cfg = _as_config(config)
    layout = Layout(cfg.output_dir)
    _require(layout.matches, "1_Proxy_Matches.py")
    with fits.open(layout.matches) as hdul:
        mask = hdul["SPECMASK"].data.astype(bool)
        pixflags = hdul["PIXFLAGS"].data.astype(np.uint8)
    table = read_table(layout.matches, "MATCHES")
    spec_flag = np.zeros(mask.shape, np.uint8)
    spec_flag[np.asarray(table["SPEC_Y"]), np.asarray(table["SPEC_X"])] = np.asarray(table["FLAG"])
    excluded_spec = mask & (spec_flag != 0)
    excluded_cand = ~mask & (pixflags != 0)
    n_spec, n_cand = int(mask.sum()), int((~mask).sum())

    # 0 non-spectral, 1 spectral, 2 excluded non-spectral, 3 excluded spectral.
    category = mask.astype(np.uint8)
    category[excluded_cand] = 2
    category[excluded_spec] = 3
    palette = ["#d9d9d9", "#3182bd", "#252525", "#e41a1c"]
    cmap = mcolors.ListedColormap(palette)
    norm = mcolors.BoundaryNorm(np.arange(-0.5, 4.5), cmap.N)

    kinds = {"hot": 1, "few valid darks": 2, "constant": 4, "no proxy": 8}
    spec_counts = {k: int(np.count_nonzero(excluded_spec & (spec_flag & b != 0)))
                   for k, b in kinds.items()}
    cand_counts = {k: int(np.count_nonzero(excluded_cand & (pixflags & b != 0)))
                   for k, b in kinds.items() if b != 8}

    ny, nx = mask.shape
    lo, hi = trace_rows(mask)
    fig, axes = _figure_rows([ny, hi - lo], width=12.0)
    for ax, rows in zip(axes, [(0, ny), (lo, hi)]):
        r0, r1 = rows
        ax.imshow(category[r0:r1], cmap=cmap, norm=norm, origin="lower", interpolation="nearest",
                  extent=(-0.5, nx - 0.5, r0 - 0.5, r1 - 0.5), aspect="auto")
        for sel, colour in ((excluded_cand, palette[2]), (excluded_spec, palette[3])):
            yy, xx = np.nonzero(sel[r0:r1])
            ax.scatter(xx, yy + r0, s=14 if r1 - r0 < ny else 9, facecolors="none",
                       edgecolors=colour, linewidths=0.8)
        ax.set_xlabel(_XLABEL)
        ax.set_ylabel(_YLABEL)
        ax.set_xlim(-0.5, nx - 0.5)
    axes[0].set_title(f"Spectral vs non-spectral pixels ({Path(cfg.spectral_mask).name}, "
                      f"{ny} x {nx}); excluded pixels circled")
    axes[1].set_title(f"Zoom on the trace, rows {lo}-{hi - 1}")
    handles = [
        Patch(color=palette[0], label=f"non-spectral (candidate proxies): {n_cand}"),
        Patch(color=palette[1], label=f"spectral (mask): {n_spec}, "
                                      f"{n_spec - int(excluded_spec.sum())} with a proxy"),
        Patch(color=palette[2], label=f"non-spectral excluded: {int(excluded_cand.sum())} "
                                      f"({_describe(cand_counts)})"),
        Patch(color=palette[3], label=f"spectral without proxy: {int(excluded_spec.sum())} "
                                      f"({_describe(spec_counts)})"),
    ]
    axes[1].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2,
                   fontsize=8, frameon=False)
    return _save(fig, _out(cfg, out_dir) / "spectral_vs_nonspectral.png")


# --------------------------------------------------------------------------
# 2. One proxy match over the darks
# --------------------------------------------------------------------------

def plot_proxy_match(config, out_dir=None, row=None) -> Path:
    """Dark series of one spectral pixel and its proxy, their residual and its histogram.

    Reproduces the seed's *Proxy_Match_Comparison*, *..._Residuals* and
    *..._Residuals_Histogram* in one figure.  The pair shown is, by default,
    the matched spectral pixel with the median SCORE of the match table (a
    typical match, neither the best nor the worst), with its first proxy.

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration.
    out_dir : str or Path, optional
        Output folder; default ``output_dir/figures``.
    row : int, optional
        Row of the MATCHES table to show instead.

    Returns
    -------
    Path
        ``proxy_match_comparison.png``.
    """
    cfg = _as_config(config)
    layout = Layout(cfg.output_dir)
    _require(layout.matches, "1_Proxy_Matches.py")
    spectral, proxy, table = read_matches(layout.matches)
    score = np.asarray(table["SCORE"], float)
    score = score[:, 0] if score.ndim == 2 else score
    matched = np.nonzero((np.asarray(table["FLAG"]) == 0) & (proxy[:, 0, 0] >= 0)
                         & np.isfinite(score))[0]
    if row is None:
        if not len(matched):
            raise PipelineError(f"{layout.matches}: no matched spectral pixel to show")
        row = int(matched[np.argsort(score[matched], kind="stable")[len(matched) // 2]])
    elif not 0 <= row < len(table) or proxy[row, 0, 0] < 0:
        raise PipelineError(f"{layout.matches}: row {row} is not a matched spectral pixel")
    (sy, sx), (py, px) = spectral[row], proxy[row, 0]
    dark_paths = cfg.dark_paths()
    spec_series = np.empty(len(dark_paths))
    prox_series = np.empty(len(dark_paths))
    for i, path in enumerate(dark_paths):
        image = read_image(path, cfg.missing_value)
        spec_series[i], prox_series[i] = image[sy, sx], image[py, px]
    residual = spec_series - prox_series
    good = np.isfinite(residual)
    med = float(np.median(residual[good])) if good.any() else np.nan
    std = float(np.std(residual[good])) if good.any() else np.nan
    index = np.arange(len(dark_paths))

    def cell(name):
        v = np.asarray(table[name][row], float).ravel()[0]
        return v

    fig = _new_figure((11, 8))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.1, 1], hspace=0.35, wspace=0.25)
    ax = fig.add_subplot(grid[0, :])
    ax.plot(index, spec_series, "o-", ms=4, lw=1, color="#3182bd",
            label=f"spectral pixel (row {sy}, column {sx})")
    ax.plot(index, prox_series, "s--", ms=4, lw=1, color="#e6550d",
            label=f"proxy pixel (row {py}, column {px})")
    ax.set_xlabel("dark frame index")
    ax.set_ylabel("dark value [ADU]")
    unit = "ADU$^2$" if cfg.proxy_method == "lsq" else "ADU"
    best = f", the best of its {proxy.shape[1]} proxies" if proxy.shape[1] > 1 else ""
    ax.set_title(f"Proxy pixel match over the {len(dark_paths)} dark frames "
                 f"(method {cfg.proxy_method}{best}; typical match: median score "
                 f"{cell('SCORE'):.3g} {unit} of {len(matched)} matched pixels)")
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)

    ax = fig.add_subplot(grid[1, 0])
    ax.axhspan(med - std, med + std, color="0.85", label="median $\\pm$ std")
    ax.axhline(med, color="k", lw=1)
    ax.plot(index, residual, "o-", ms=4, lw=1, color="#31a354", label="spectral - proxy")
    ax.set_xlabel("dark frame index")
    ax.set_ylabel("residual [ADU]")
    ax.set_title("Residuals")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)

    ax = fig.add_subplot(grid[1, 1])
    values = residual[good]
    if values.size:
        bins = _integer_bins(values) if np.allclose(values, np.round(values)) else "auto"
        ax.hist(values, bins=bins, color="#31a354", alpha=0.8, edgecolor="k", lw=0.5)
    ax.axvline(med, color="k", lw=1.5, label=f"median {med:.2f} ADU")
    ax.axvspan(med - std, med + std, color="0.5", alpha=0.2, label=f"std {std:.2f} ADU")
    ax.set_xlabel("residual spectral - proxy [ADU]")
    ax.set_ylabel("dark frames")
    ax.set_title("Histogram of residuals")
    ax.legend(fontsize=8, loc="upper right")
    ax.text(0.02, 0.97, f"N = {int(good.sum())} darks\n"
            f"table: median {cell('RES_MEDIAN'):.2f}, std {cell('RES_STD'):.2f}",
            transform=ax.transAxes, va="top", fontsize=8)
    return _save(fig, _out(cfg, out_dir) / "proxy_match_comparison.png")


# --------------------------------------------------------------------------
# 3. Science, Dark, Background, Final; Median Frame
# --------------------------------------------------------------------------

def plot_frames(config, frame_index=None, out_dir=None) -> Path:
    """Science, Dark, Background and Final (before infill) Frames of one frame.

    Reproduces the seed's four ``*_Combined`` frame figures.  The dark shown
    is the one with the CCD temperature (``CCDTEMP``) closest to the science
    frame's when both headers have it, else the first dark.  Each panel shows
    the trace rows at full width with its own ZScale stretch; empty pixels
    (outside the spectral mask, or without a proxy) are white.

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
        ``frames_science_dark_background_final.png``.
    """
    cfg = _as_config(config)
    layout = Layout(cfg.output_dir)
    science = _science_path(cfg, frame_index)
    background_path = _require(layout.background(science), "2_Frames.py")
    final_path = _require(layout.final_no_infill(science), "2_Frames.py")
    dark_path, dark_note = _closest_dark(cfg, science)
    images = [
        (read_image(science, cfg.missing_value), f"Science Frame {science.name}"),
        (read_image(dark_path, cfg.missing_value), f"Dark Frame {dark_path.name} {dark_note}"),
        (read_image(background_path), f"Background Frame of {science.name} "
                                      f"(proxy pixels' science values)"),
        (read_image(final_path), f"Final Frame of {science.name} before infill "
                                 f"(Science - Background)"),
    ]
    mask = _spectral_mask(cfg, layout, images[0][0].shape)
    lo, hi = trace_rows(mask)
    fig, axes = _figure_rows([hi - lo] * 4, width=12.0)
    for ax, (image, title) in zip(axes, images):
        _show(ax, image, title, rows=(lo, hi))
    axes[-1].set_xlabel(_XLABEL)
    return _save(fig, _out(cfg, out_dir) / "frames_science_dark_background_final.png")


def plot_median_frame(config, out_dir=None) -> Path:
    """The Median Frame (per-pixel median of the science frames).

    Reproduces the seed's *Median_Frame_Combined*: the whole frame (top,
    showing the smooth background gradient) and the trace rows (bottom).

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration.
    out_dir : str or Path, optional
        Output folder; default ``output_dir/figures``.

    Returns
    -------
    Path
        ``median_frame.png``.
    """
    cfg = _as_config(config)
    layout = Layout(cfg.output_dir)
    median = read_image(_require(layout.median_frame, "3_Median_Fits.py"))
    n = len(cfg.science_paths())
    mask = _spectral_mask(cfg, layout, median.shape)
    lo, hi = trace_rows(mask)
    ny = median.shape[0]
    fig, axes = _figure_rows([ny, hi - lo], width=12.0)
    _show(axes[0], median, f"Median Frame (per-pixel median of {n} science frames), whole frame")
    _show(axes[1], median, f"Median Frame, trace rows {lo}-{hi - 1}", rows=(lo, hi))
    axes[-1].set_xlabel(_XLABEL)
    return _save(fig, _out(cfg, out_dir) / "median_frame.png")


# --------------------------------------------------------------------------
# 4. Columns of one bin vs its median profile
# --------------------------------------------------------------------------

def plot_bin_columns(config, out_dir=None, bin_index=None) -> Path:
    """Raw Median Frame columns of one bin against the bin's median profile.

    Reproduces the seed's *Raw_Column_vs_Median_Column_Traces*.  By default
    the bin shown is the double-Gaussian (flag GOOD) bin with the widest peak
    separation, else the middle bin; its fit is overlaid (dashed).

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration.
    out_dir : str or Path, optional
        Output folder; default ``output_dir/figures``.
    bin_index : int, optional
        Bin to show instead.

    Returns
    -------
    Path
        ``bin_columns_vs_median.png``.
    """
    cfg = _as_config(config)
    layout = Layout(cfg.output_dir)
    median = read_image(_require(layout.median_frame, "3_Median_Fits.py"))
    fits_, profiles = _median_fits_and_profiles(layout, median, cfg.bin_width)
    if bin_index is None:
        width = np.asarray(fits_.column_hi) - np.asarray(fits_.column_lo)
        full = width == width.max()
        sep = np.where((np.asarray(fits_.flag) == 0) & full, fits_.mu2 - fits_.mu1, -np.inf)
        bin_index = int(np.argmax(sep)) if np.isfinite(sep).any() else len(fits_) // 2
    if not 0 <= bin_index < len(fits_):
        raise PipelineError(f"bin_index {bin_index} out of range: {len(fits_)} bins")
    c0, c1 = int(fits_.column_lo[bin_index]), int(fits_.column_hi[bin_index])
    mask = _spectral_mask(cfg, layout, median.shape)
    lo, hi = trace_rows(mask)
    rows = np.arange(lo, hi)
    fig = _new_figure((9, 5.5))
    ax = fig.add_subplot()
    cmap = _colormap("cividis")
    for k, c in enumerate(range(c0, c1)):
        ax.plot(rows, median[lo:hi, c], lw=0.7, alpha=0.7,
                color=cmap(k / max(c1 - c0 - 1, 1)),
                label="Median Frame columns (thin, colour = column)" if k == 0 else None)
    ax.plot(rows, profiles[bin_index, lo:hi], "k-", lw=3, label="bin median profile")
    y = np.linspace(lo, hi - 1, 400)
    if np.all(np.isfinite(fits_.params[bin_index])):
        ax.plot(y, double_gaussian(y, *fits_.params[bin_index]), "--", color="#e41a1c", lw=1.5,
                label=f"fit ({_flag_name(fits_.flag[bin_index])})")
    # Robust vertical range: a hot pixel or cosmic ray in one column would
    # flatten everything else; such values are clipped and counted.
    ref = [v[np.isfinite(v)] for v in (profiles[bin_index, lo:hi], median[lo:hi, c0:c1].ravel())]
    if ref[0].size:
        span = max(np.ptp(ref[0]), 1.0)
        ymin = min(ref[0].min(), np.percentile(ref[1], 1) if ref[1].size else ref[0].min())
        ymax = ref[0].max() + 0.6 * span
        ax.set_ylim(ymin - 0.1 * span, ymax)
        n_clip = int(np.count_nonzero(ref[1] > ymax))
        if n_clip:
            ax.text(0.99, 0.98, f"{n_clip} column value(s) above the axis\n"
                    "(hot pixels, cosmic rays)", transform=ax.transAxes, ha="right", va="top",
                    fontsize=8)
    ax.set_xlabel(_YLABEL)
    ax.set_ylabel("Median Frame value [ADU]")
    ax.set_title(f"Median Frame: the {c1 - c0} columns of bin {bin_index + 1}/{len(fits_)} "
                 f"(columns {c0}-{c1 - 1}) vs their median profile")
    ax.set_xlim(lo - 0.5, hi - 0.5)
    ax.legend(fontsize=9, loc="upper left")
    ax.grid(alpha=0.3)
    sm = _scalar_mappable(cmap, c0, c1 - 1)
    fig.colorbar(sm, ax=ax, label="column [pix]", pad=0.01)
    return _save(fig, _out(cfg, out_dir) / "bin_columns_vs_median.png")


# --------------------------------------------------------------------------
# 5. Animations of the fits over the bins
# --------------------------------------------------------------------------

def animate_median_fits(config, out_dir=None) -> Path:
    """GIF over the column bins: Median Frame profile and its double-Gaussian fit.

    Reproduces the seed's *Median_Fits.gif*: for each bin, the binned median
    profile (points), the fit (line) and its two Gaussian components (each
    on the fitted offset), titled with the bin's columns and fit flag.  The
    axes are the same in every frame so that bins compare directly.

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration.
    out_dir : str or Path, optional
        Output folder; default ``output_dir/figures``.

    Returns
    -------
    Path
        ``median_fits.gif``.
    """
    cfg = _as_config(config)
    layout = Layout(cfg.output_dir)
    _require(layout.median_fits, "3_Median_Fits.py")
    median = read_image(layout.median_frame) if layout.median_frame.is_file() else None
    fits_, profiles = _median_fits_and_profiles(layout, median, cfg.bin_width)
    mask = _spectral_mask(cfg, layout, (profiles.shape[1], int(fits_.column_hi.max())))
    lo, hi = trace_rows(mask)
    return _animate(fits_, profiles, (lo, hi), _out(cfg, out_dir) / "median_fits.gif",
                    "Median Frame", "Median Frame value [ADU]")


def animate_final_fits(config, frame_index=None, out_dir=None) -> Path:
    """GIF over the column bins of one Final Frame's profiles and fits.

    Reproduces the seed's *Final_Fits_GIF.gif*: for each bin, the binned
    profile of the Final Frame before infill (points; only spectral-mask
    rows exist), its stage-4 fit with the two components, and for
    comparison the Median Frame fit's shape scaled to the points (linear
    least squares, scale and offset).

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
        ``final_fits.gif``.
    """
    cfg = _as_config(config)
    layout = Layout(cfg.output_dir)
    science = _science_path(cfg, frame_index)
    final = read_image(_require(layout.final_no_infill(science), "2_Frames.py"))
    fits_ = read_profile_fits(_require(layout.final_fits(science), "4_Final_Fits.py"))
    reference = read_profile_fits(_require(layout.median_fits, "3_Median_Fits.py"))
    edges, profiles = binned_profiles(final, cfg.bin_width)
    if len(edges) - 1 != len(fits_):
        raise PipelineError(f"{layout.final_fits(science)}: {len(fits_)} bins, but bin_width "
                            f"{cfg.bin_width} gives {len(edges) - 1}; rerun 4_Final_Fits.py")
    lo, hi = trace_rows(_spectral_mask(cfg, layout, final.shape))
    return _animate(fits_, profiles, (lo, hi), _out(cfg, out_dir) / "final_fits.gif",
                    f"Final Frame {science.name}", "Final Frame value [ADU]", reference=reference)


# --------------------------------------------------------------------------
# 6. Final Frame after infill and after cosmic-ray removal
# --------------------------------------------------------------------------

def plot_final_infill(config, frame_index=None, out_dir=None) -> Path:
    """Final Frame after infill and after cosmic-ray removal, changed pixels marked.

    Reproduces the seed's *Final_Frame_After_Infill* and
    *Final_Frame_After_Infill_And_CR_Removal*.  Panels, top to bottom: the
    Final Frame after infill (not stored by stage 5, so rebuilt as stage 5
    makes it: the Final Frame with its ``INFILLED`` pixels taken from the
    stage-4 model); a map of the pixels stage 5 changed (infilled because
    empty, infilled because negative, cosmic ray); the frame after
    cosmic-ray removal with the cosmic-ray pixels outlined (magenta); and
    a zoom on the largest cosmic ray before and after, infilled pixels
    outlined red.  The three image panels share one stretch.

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
    """
    from scipy import ndimage

    cfg = _as_config(config)
    layout = Layout(cfg.output_dir)
    science = _science_path(cfg, frame_index)
    final_path = _require(layout.final(science), "5_Infill.py")
    before = read_image(_require(layout.final_no_infill(science), "2_Frames.py"))
    model = model_frame(read_profile_fits(_require(layout.final_fits(science), "4_Final_Fits.py")),
                        before.shape)
    with fits.open(final_path) as hdul:
        cleaned = hdul[0].data.astype(np.float32)
        infilled = hdul["INFILLED"].data.astype(bool)
        cosmic = hdul["COSMIC"].data.astype(bool)
    filled = np.where(infilled, model, before).astype(np.float32)
    was_empty = infilled & ~np.isfinite(before)
    was_negative = infilled & np.isfinite(before)

    mask = _spectral_mask(cfg, layout, before.shape)
    lo, hi = trace_rows(mask)
    norm = _zscale(cleaned[lo:hi])
    name = science.name
    fig = _new_figure((12, 11.5))
    grid = fig.add_gridspec(4, 2, height_ratios=[1, 1, 1, 1.3], hspace=0.55, wspace=0.18)
    ax1 = fig.add_subplot(grid[0, :])
    _show(ax1, filled, f"Final Frame {name} after infill ({int(infilled.sum())} pixels infilled "
          f"from the stage-4 fits)", rows=(lo, hi), norm=norm)

    # Map of the pixels stage 5 changed.
    ax2 = fig.add_subplot(grid[1, :], sharex=ax1)
    category = np.where(mask, 0.0, np.nan)
    category[was_negative] = 1
    category[was_empty] = 2
    category[cosmic] = 3
    palette = ["#d9d9d9", "#fd8d3c", "#e41a1c", "#c51b8a"]
    cmap = mcolors.ListedColormap(palette).with_extremes(bad=_BAD_COLOUR)
    ax2.imshow(np.ma.masked_invalid(category[lo:hi]), cmap=cmap,
               norm=mcolors.BoundaryNorm(np.arange(-0.5, 4.5), cmap.N), origin="lower",
               interpolation="nearest", aspect="auto",
               extent=(-0.5, before.shape[1] - 0.5, lo - 0.5, hi - 0.5))
    ax2.set_title(f"Pixels changed by stage 5 in {name} (spectral mask only)", fontsize=10)
    ax2.set_ylabel(ax1.get_ylabel())
    handles = [Patch(color=palette[0], label="unchanged"),
               Patch(color=palette[1], label=f"infilled, was negative: {int(was_negative.sum())}"),
               Patch(color=palette[2], label=f"infilled, was empty: {int(was_empty.sum())}"),
               Patch(color=palette[3], label=f"cosmic ray: {int(cosmic.sum())}")]
    ax2.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, framealpha=0.9)
    # An invisible colour bar keeps this panel as wide as the image panels.
    spacer = fig.colorbar(_scalar_mappable(cmap, 0, 1), ax=ax2, pad=0.01, fraction=0.05)
    spacer.ax.set_visible(False)

    ax3 = fig.add_subplot(grid[2, :], sharex=ax1)
    _show(ax3, cleaned, f"Final Frame {name} after infill and cosmic-ray removal "
          f"({int(cosmic.sum())} cosmic-ray pixels replaced, outlined magenta)",
          rows=(lo, hi), norm=norm)
    _outline(ax3, cosmic, "magenta", lw=1.0)
    ax3.set_xlabel(_XLABEL)

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
        _show(ax, image, f"{what}, columns {x0}-{x1 - 1}: {title}", rows=(lo, hi),
              columns=(x0, x1), norm=norm)
        _outline(ax, infilled, "red", lw=0.8)
        _outline(ax, cosmic, "magenta", lw=1.5)
        ax.set_xlabel(_XLABEL)
        if k:
            ax.set_ylabel("")
    return _save(fig, _out(cfg, out_dir) / "final_infill_and_cosmic.png")


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def trace_rows(mask, margin=None):
    """Rows to show around the spectral trace: the mask's rows plus a margin.

    Parameters
    ----------
    mask : ndarray of bool, 2D
        Spectral mask.
    margin : int, optional
        Rows added on each side; default half the mask's height, at least 5.

    Returns
    -------
    (int, int)
        First row and one past the last, clipped to the frame.
    """
    rows = np.nonzero(np.asarray(mask).any(axis=1))[0]
    ny = mask.shape[0]
    if not rows.size:
        return 0, ny
    height = rows[-1] - rows[0] + 1
    margin = max(5, height // 2) if margin is None else int(margin)
    return max(0, int(rows[0]) - margin), min(ny, int(rows[-1]) + 1 + margin)


def _as_config(config) -> Config:
    return config if isinstance(config, Config) else load_config(config)


def _out(cfg, out_dir) -> Path:
    out = Path(out_dir) if out_dir is not None else Layout(cfg.output_dir).figures
    out.mkdir(parents=True, exist_ok=True)
    return out


def _require(path, script) -> Path:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: missing; run {script} first")
    return path


def _science_path(cfg, frame_index) -> Path:
    paths = cfg.science_paths()
    index = 0 if frame_index is None else int(frame_index)
    if not -len(paths) <= index < len(paths):
        raise PipelineError(f"frame index {index} out of range: {len(paths)} science frames "
                            f"({cfg.science_frames})")
    return paths[index]


def _spectral_mask(cfg, layout, shape):
    """Spectral mask as stage 1 stored it, else the config's mask file."""
    if layout.matches.is_file():
        try:
            return read_spectral_mask(layout.matches)
        except PipelineError:
            pass
    return read_mask(cfg.spectral_mask, shape)


def _closest_dark(cfg, science):
    """The dark with the CCDTEMP closest to the science frame's, and a note."""
    darks = cfg.dark_paths()
    t_sci = fits.getheader(science).get("CCDTEMP")
    if t_sci is None:
        return darks[0], "(first dark)"
    temps = np.array([fits.getheader(p).get("CCDTEMP", np.nan) for p in darks], float)
    if not np.isfinite(temps).any():
        return darks[0], "(first dark)"
    i = int(np.nanargmin(np.abs(temps - t_sci)))
    return darks[i], f"(CCD {temps[i]:.2f} C, closest to the science frame's {t_sci:.2f} C)"


def _median_fits_and_profiles(layout, median, bin_width):
    """Stage-3 fits and the binned profiles (stored PROFILES, else recomputed)."""
    fits_ = read_profile_fits(_require(layout.median_fits, "3_Median_Fits.py"))
    profiles = None
    with fits.open(layout.median_fits) as hdul:
        if "PROFILES" in hdul:
            profiles = np.asarray(hdul["PROFILES"].data, float)
    if profiles is None or len(profiles) != len(fits_):
        if median is None:
            raise PipelineError(f"{layout.median_fits}: no PROFILES extension and no Median Frame")
        _, profiles = binned_profiles(median, bin_width)
    return fits_, profiles


def _describe(counts) -> str:
    """'3 hot, 1 constant' from a dict of counts ('none' if all zero)."""
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none"


def _flag_name(flag) -> str:
    flag = int(flag)
    if flag == 0:
        return "GOOD (double)"
    return "|".join(f.name for f in FitFlag if f.value and flag & f.value)


def _new_figure(size) -> Figure:
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _figure_rows(heights, width=12.0):
    """A figure of stacked full-width image panels with heights ~ rows shown."""
    heights = np.asarray(heights, float)
    # ~ 0.04 inch per row shown, limited so short panels stay readable.
    panel = np.clip(0.04 * heights, 1.3, 3.5)
    gap = 0.8   # inches between panels, for the x labels and the next title
    fig = _new_figure((width, panel.sum() + gap * (len(panel) - 1) + 0.6))
    grid = fig.add_gridspec(len(heights), 1, height_ratios=panel, hspace=gap / panel.mean())
    axes = [fig.add_subplot(grid[i]) for i in range(len(heights))]
    return fig, axes


def _colormap(name=_CMAP):
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad=_BAD_COLOUR)


def _scalar_mappable(cmap, vmin, vmax):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=mcolors.Normalize(vmin, vmax), cmap=cmap)


def _zscale(image):
    """ZScale stretch of the finite pixels (linear), for ImageNormalize.

    ZScale does not tighten on images that are mostly a bright trace on
    noise (a Final Frame: its limits are then the extreme pixels), so the
    limits are also kept within the 0.5-99.8 percentiles.
    """
    values = np.asarray(image, float)
    values = values[np.isfinite(values)]
    if not values.size:
        return mcolors.Normalize(0.0, 1.0)
    vmin, vmax = ZScaleInterval().get_limits(values)
    p_lo, p_hi = np.percentile(values, [0.5, 99.8])
    vmin, vmax = max(vmin, p_lo), min(vmax, p_hi)
    if not vmax > vmin:
        vmin, vmax = float(values.min()), float(values.max())
        if not vmax > vmin:
            vmin, vmax = vmin - 0.5, vmax + 0.5
    return ImageNormalize(vmin=vmin, vmax=vmax, clip=False)


def _show(ax, image, title, rows=None, columns=None, norm=None):
    """Image panel with pixel-centred coordinates, ZScale stretch and ADU colour bar."""
    ny, nx = image.shape
    r0, r1 = rows if rows is not None else (0, ny)
    c0, c1 = columns if columns is not None else (0, nx)
    cut = image[r0:r1, c0:c1]
    norm = norm if norm is not None else _zscale(cut)
    # Pixels stay sharp while the panel has a screen pixel per column; a
    # wider frame (CUTE: 2048 columns) is antialiased rather than decimated.
    width_px = ax.get_position().width * ax.figure.get_figwidth() * _DPI
    interpolation = "nearest" if cut.shape[1] <= width_px else "antialiased"
    im = ax.imshow(np.ma.masked_invalid(cut), origin="lower", cmap=_colormap(), norm=norm,
                   interpolation=interpolation, aspect="auto",
                   extent=(c0 - 0.5, c1 - 0.5, r0 - 0.5, r1 - 0.5))
    ax.set_title(title, fontsize=10)
    inches = ax.get_position().height * ax.figure.get_figheight()
    ax.set_ylabel(_YLABEL if inches >= 2.2 else "row [pix]")
    ax.figure.colorbar(im, ax=ax, label="ADU", pad=0.01, fraction=0.05, extend="both")
    return im


def _outline(ax, mask, colour, lw=0.7):
    """Draw the outline of the True pixels of ``mask`` (pixel edges)."""
    m = np.pad(np.asarray(mask, bool), 1)
    if not m.any():
        return
    # Vertical edges between columns j-1 and j of the frame, at x = j - 0.5.
    yv, xv = np.nonzero(m[1:-1, 1:] != m[1:-1, :-1])
    # Horizontal edges between rows i-1 and i, at y = i - 0.5.
    yh, xh = np.nonzero(m[1:, 1:-1] != m[:-1, 1:-1])
    segs = np.concatenate([
        np.stack([np.stack([xv - 0.5, yv - 0.5], -1), np.stack([xv - 0.5, yv + 0.5], -1)], 1),
        np.stack([np.stack([xh - 0.5, yh - 0.5], -1), np.stack([xh + 0.5, yh - 0.5], -1)], 1),
    ]).astype(float)
    # Keep only the edges inside the current view, and keep the view.
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    inside = ((segs[:, :, 0].max(1) >= x0) & (segs[:, :, 0].min(1) <= x1)
              & (segs[:, :, 1].max(1) >= y0) & (segs[:, :, 1].min(1) <= y1))
    ax.add_collection(LineCollection(segs[inside], colors=colour, linewidths=lw), autolim=False)


def _integer_bins(values):
    lo, hi = np.floor(values.min()), np.ceil(values.max())
    step = max(1.0, np.ceil((hi - lo + 1) / 40))
    return np.arange(lo - 0.5, hi + step + 0.5, step)


def _animate(fits_, profiles, rows, path, what, ylabel, reference=None):
    """Write the GIF of profiles and fits over the bins (subsampled to <= 100 frames)."""
    lo, hi = rows
    y_all = np.arange(profiles.shape[1])
    sel = slice(lo, hi)
    y_fine = np.linspace(lo, hi - 1, 300)
    n_bins = len(fits_)
    bins = np.unique(np.linspace(0, n_bins - 1, min(n_bins, _MAX_GIF_FRAMES)).round().astype(int))
    # Fixed axes: the range of the data and fits over all bins shown.
    shown = [profiles[:, sel][np.isfinite(profiles[:, sel])]]
    for b in bins:
        if np.all(np.isfinite(fits_.params[b])):
            shown.append(double_gaussian(y_fine, *fits_.params[b]))
    shown = np.concatenate(shown) if shown else np.zeros(1)
    shown = shown[np.isfinite(shown)]
    ymin, ymax = (np.percentile(shown, [0, 99.9]) if shown.size else (0.0, 1.0))
    pad = 0.06 * (ymax - ymin or 1.0)

    fig = _new_figure((7, 4.5))
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.13, right=0.97, top=0.86, bottom=0.13)
    points, = ax.plot([], [], "o", ms=4, color="k", label="binned profile (median of columns)")
    total, = ax.plot([], [], "-", lw=2, color="#e41a1c", label="double-Gaussian fit")
    comp1, = ax.plot([], [], "--", lw=1, color="#377eb8", label="component 1 (+ offset)")
    comp2, = ax.plot([], [], "--", lw=1, color="#4daf4a", label="component 2 (+ offset)")
    ref = None
    if reference is not None:
        ref, = ax.plot([], [], ":", lw=1.8, color="#984ea3", label="Median Frame fit, scaled")
    ax.set_xlim(lo - 0.5, hi - 0.5)
    ax.set_ylim(ymin - pad, ymax + pad)
    ax.set_xlabel(_YLABEL)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    title = ax.set_title("", fontsize=9)
    writer = PillowWriter(fps=_GIF_FPS)
    with atomic_path(path) as tmp, writer.saving(fig, str(tmp), dpi=_GIF_DPI):
        for b in bins:
            p = fits_.params[b]
            prof = profiles[b]
            points.set_data(y_all[sel], prof[sel])
            if np.all(np.isfinite(p)):
                a1, m1, s1, a2, m2, s2, c = p
                total.set_data(y_fine, double_gaussian(y_fine, *p))
                comp1.set_data(y_fine, double_gaussian(y_fine, a1, m1, s1, 0.0, m1, 1.0, c))
                comp2.set_data(y_fine, double_gaussian(y_fine, 0.0, m2, 1.0, a2, m2, s2, c)
                               if a2 else [np.nan] * len(y_fine))
                extra = (f"\n$A_1$={a1:.0f}, $\\mu_1$={m1:.1f}, $\\sigma_1$={s1:.2f}; "
                         + (f"$A_2$={a2:.0f}, $\\mu_2$={m2:.1f}, $\\sigma_2$={s2:.2f}; "
                            if a2 else "") + f"offset {c:.1f} ADU")
            else:
                for line in (total, comp1, comp2):
                    line.set_data([], [])
                extra = "\nno fit"
            if ref is not None:
                ref.set_data(*_scaled_reference(reference.params[b], y_all, prof, y_fine))
            c0, c1 = int(fits_.column_lo[b]), int(fits_.column_hi[b])
            title.set_text(f"{what}: bin {b + 1}/{n_bins}, columns {c0}-{c1 - 1}, "
                           f"flag {_flag_name(fits_.flag[b])}{extra}")
            writer.grab_frame()
    return path


def _scaled_reference(params, y, profile, y_fine):
    """Reference fit shape scaled to the profile: k * shape + c (least squares)."""
    if not np.all(np.isfinite(params)):
        return [], []
    shape = double_gaussian(y, *params[:6], 0.0)
    good = np.isfinite(profile)
    if good.sum() < 2:
        return [], []
    design = np.column_stack([shape[good], np.ones(good.sum())])
    (k, c), *_ = np.linalg.lstsq(design, profile[good], rcond=None)
    return y_fine, k * double_gaussian(y_fine, *params[:6], 0.0) + c


def _save(fig, path, dpi=_DPI) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Path(path)
