"""Figures of stage 6 (spectra and light curves).

No seed figure: the seed's pipeline stopped at the cleaned frames.  Three
figures, from stage 6's products only:

- ``spectrum.png`` (:func:`plot_spectrum`): one frame's optimal and box
  spectra with their error bands;
- ``light_curve_2d.png`` (:func:`plot_light_curve_2d`): the channel light
  curves as an image, frames by channels;
- ``white_light_curve.png`` (:func:`plot_white_light_curve`): the white
  light curves as measured, with the transit window and the orbit windows.

The transit fit's figures are stage 7's (:mod:`.transit_fit`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.ticker import MaxNLocator

from ..science import lightcurves as lc
from ..io.products import Spectrum, read_light_curves
from ..flags import SpectrumFlag
from .drawing import XLABEL, colormap, new_figure
from .inputs import FigureSpec

__all__ = ["SPECTRUM", "LIGHT_CURVE_2D", "WHITE_LIGHT_CURVE", "plot_spectrum",
           "plot_light_curve_2d", "plot_white_light_curve"]

SPECTRUM = FigureSpec("spectrum.png", needs=("spectra",))
LIGHT_CURVE_2D = FigureSpec("light_curve_2d.png", needs=("light_curves",))
WHITE_LIGHT_CURVE = FigureSpec("white_light_curve.png", needs=("light_curves",))

OPTIMAL_COLOUR = "#1f4e9c"
BOX_COLOUR = "#d9730d"
WAVELABEL = "wavelength [Å]"
#: Spectrum columns whose optimal flux rests on few or no pixels (filled in the light curves).
FEW_PIXELS = SpectrumFlag.LOW_WEIGHT | SpectrumFlag.NO_DATA


def _spectral_axis(spectrum):
    """The x values and label of a :class:`Spectrum`: wavelength (A) if known, else column."""
    if spectrum.wavelength is not None and np.isfinite(spectrum.wavelength).all():
        return spectrum.wavelength, WAVELABEL
    return np.arange(len(spectrum.flux), dtype=float), XLABEL


def _band(ax, x, y, err, colour, label, lw=1.0, alpha=0.3):
    ax.fill_between(x, y - err, y + err, color=colour, alpha=alpha, lw=0, step="mid")
    ax.plot(x, y, color=colour, lw=lw, drawstyle="steps-mid", label=label)


@SPECTRUM.draws
def plot_spectrum(config, frame_index=None, out_dir=None) -> Path:
    """One frame's optimal and box spectrum with their 1-sigma error bands.

    Panels, top to bottom: both spectra over every column (``FLUX``,
    ``FLUX_BOX`` of ``spectra/<frame>``, ADU per exposure) with the columns
    flagged LOW_WEIGHT or NO_DATA marked; a zoom on 60 columns around the
    brightest part of the spectrum, where the error bands are visible; each
    column's 1-sigma error (``FLUX_ERR``, ``FLUX_BOX_ERR``) and their ratio.

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
        ``spectrum.png``.
    """
    run = SPECTRUM.open(config, frame_index, out_dir)
    spectrum = Spectrum.read(run.paths["spectra"])
    x, xlabel = _spectral_axis(spectrum)
    flux, flux_err, box, box_err = spectrum.flux, spectrum.flux_err, spectrum.box, spectrum.box_err
    dq = spectrum.dq
    few = (dq & int(FEW_PIXELS)) != 0
    rejected = (dq & int(SpectrumFlag.REJECTED)) != 0
    name = run.science.name

    fig = new_figure((11, 9.5))
    grid = fig.add_gridspec(3, 1, height_ratios=[1.3, 1.0, 0.8], hspace=0.42)
    top = fig.add_subplot(grid[0])
    _band(top, x, box, box_err, BOX_COLOUR, "box sum (FLUX_BOX)", lw=0.8)
    _band(top, x, flux, flux_err, OPTIMAL_COLOUR, "optimal (FLUX)", lw=0.8)
    if few.any():
        top.plot(x[few], np.where(np.isfinite(flux[few]), flux[few], np.nanmedian(flux)), "x",
                 color="red", ms=5, label=f"LOW_WEIGHT / NO_DATA: {int(few.sum())} columns")
    top.set_ylabel("flux [ADU per exposure]")
    top.set_xlabel(xlabel)
    n_rej = int(rejected.sum())
    top.set_title(f"Spectrum of {name}: optimal and box extraction, 1-sigma bands "
                  f"({n_rej} column{'' if n_rej == 1 else 's'} with a pixel rejected as "
                  f"outlier)", fontsize=10)
    top.legend(fontsize=8, loc="best")

    # Zoom: 60 columns centred on the brightest smoothed part of the spectrum.
    n = len(x)
    half = min(30, n // 2)
    smooth = np.convolve(np.nan_to_num(box), np.ones(2 * half) / (2 * half), mode="same")
    centre = int(np.clip(np.argmax(smooth), half, n - half))
    zoom = slice(centre - half, centre + half)
    mid = fig.add_subplot(grid[1])
    _band(mid, x[zoom], box[zoom], box_err[zoom], BOX_COLOUR, "box sum ± 1 sigma")
    _band(mid, x[zoom], flux[zoom], flux_err[zoom], OPTIMAL_COLOUR, "optimal ± 1 sigma")
    mid.set_ylabel("flux [ADU per exposure]")
    mid.set_xlabel(xlabel)
    where = (f" ({x[zoom][0]:.0f}-{x[zoom][-1]:.0f} Å)" if xlabel == WAVELABEL else "")
    mid.set_title(f"Zoom on columns {centre - half}-{centre + half - 1}{where}, the brightest "
                  f"part (grey above)", fontsize=10)
    mid.legend(fontsize=8, loc="best")
    top.axvspan(x[zoom][0], x[zoom][-1], color="0.85", zorder=0)

    bottom = fig.add_subplot(grid[2], sharex=top)
    bottom.plot(x, box_err, color=BOX_COLOUR, lw=0.8, label="box error (FLUX_BOX_ERR)")
    bottom.plot(x, flux_err, color=OPTIMAL_COLOUR, lw=0.8, label="optimal error (FLUX_ERR)")
    bottom.set_ylabel("1-sigma error [ADU]")
    bottom.set_xlabel(xlabel)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.nanmedian(box_err / flux_err)
    bottom.set_title(f"Errors per column (median box / optimal: {ratio:.2f})", fontsize=10)
    bottom.legend(fontsize=8, loc="best")
    return run.save(fig)


def _light_curves(run):
    """``LIGHTCURVES`` and ``CHANNELS`` of the run's light_curves.fits."""
    path = run.paths["light_curves"]
    return read_light_curves(path)


def _time_axis(cfg, times):
    """Hours from ``transit_mid`` (else from the first frame), or frame numbers without times."""
    times = np.asarray(times, float)
    if not np.isfinite(times).all():
        return np.arange(len(times), dtype=float), "frame (in the order of science_frames)", None
    t0 = cfg.transit_mid if cfg.transit_mid is not None else float(times.min())
    where = "mid-transit" if cfg.transit_mid is not None else "the first frame"
    return (times - t0) * 24.0, f"time from {where} (MJD {t0:.5f}) [h]", t0


@LIGHT_CURVE_2D.draws
def plot_light_curve_2d(config, out_dir=None) -> Path:
    """The channel light curves as an image: frames (by time) against channels.

    Each cell is the channel's normalised flux (``CHANNELS`` of
    ``light_curves.fits``, 1 = the out-of-transit median) minus 1, in per
    cent, on a colour scale symmetric about 0; frames in transit (column
    ``IN_TRANSIT``) are marked on the right.  The channels' wavelength (or
    column) ranges label the x axis.

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration.
    out_dir : str or Path, optional
        Output folder; default ``output_dir/figures``.

    Returns
    -------
    Path
        ``light_curve_2d.png``.
    """
    run = LIGHT_CURVE_2D.open(config, out_dir=out_dir)
    lcs, chans = _light_curves(run)
    values = 100.0 * (np.asarray(lcs["CHANNELS"], float) - 1.0)
    if values.ndim == 1:
        values = values[:, None]
    n_frames, n_chan = values.shape
    y, ylabel, _ = _time_axis(run.cfg, lcs["TIME"])
    limit = np.nanpercentile(np.abs(values), 99) if np.isfinite(values).any() else 1.0
    limit = float(limit) if limit > 0 else 1.0

    fig = new_figure((9, 6.5))
    ax = fig.add_subplot()
    cmap = colormap("RdBu_r")
    image = ax.imshow(values, cmap=cmap, norm=mcolors.Normalize(-limit, limit), origin="lower",
                      aspect="auto", interpolation="nearest",
                      extent=(-0.5, n_chan - 0.5, -0.5, n_frames - 0.5))
    bar = fig.colorbar(image, ax=ax, pad=0.14)
    bar.set_label("normalised flux - 1 [%]")
    ax.set_xticks(np.arange(n_chan))
    wl_lo = np.asarray(chans["WAVELENGTH_LO"], float)
    wl_hi = np.asarray(chans["WAVELENGTH_HI"], float)
    if np.isfinite(wl_lo).all() and np.isfinite(wl_hi).all():
        ticks = [f"{k}\n{lo:.0f}-{hi:.0f} Å" for k, lo, hi in zip(chans["CHANNEL"], wl_lo, wl_hi)]
    else:
        ticks = [f"{k}\ncol {lo}-{hi}" for k, lo, hi in
                 zip(chans["CHANNEL"], chans["COLUMN_LO"], chans["COLUMN_HI"])]
    ax.set_xticklabels(ticks, fontsize=7)
    widths = np.asarray(chans["COLUMN_HI"], int) - np.asarray(chans["COLUMN_LO"], int) + 1
    short = ", the last one shorter" if len(widths) > 1 and widths[-1] < widths[0] else ""
    ax.set_xlabel(f"channel (channel_width = {run.cfg.channel_width} columns{short})")
    ax.set_ylabel("frame, in time order")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    # Frame times on a secondary axis at a few frames.
    right = ax.secondary_yaxis("right")
    step = max(1, n_frames // 8)
    right.set_yticks(np.arange(0, n_frames, step))
    right.set_yticklabels([f"{v:.2f}" for v in y[::step]], fontsize=7)
    right.set_ylabel(ylabel.replace(" (MJD", "\n(MJD"), fontsize=8)
    if "IN_TRANSIT" in lcs.colnames:
        inside = np.asarray(lcs["IN_TRANSIT"], bool)
        # A dashed line wherever the frames enter or leave the transit.
        for k, edge in enumerate(np.flatnonzero(np.diff(inside.astype(int))) + 0.5):
            ax.axhline(edge, color="k", ls="--", lw=1.2,
                       label="transit window (IN_TRANSIT)" if k == 0 else None)
        if inside.any() and not inside.all():
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.13))
    ax.set_title(f"Channel light curves: {n_frames} frames x {n_chan} channels "
                 f"(optimal extraction)", fontsize=10)
    return run.save(fig)


@WHITE_LIGHT_CURVE.draws
def plot_white_light_curve(config, out_dir=None) -> Path:
    """The white light curves as stage 6 measured them, with the transit window.

    The normalised optimal white light curve (``WHITE`` with ``WHITE_ERR``)
    and the box one (``WHITE_BOX``, for comparison) against time, the transit
    window shaded (where the config's transit model is below 1), the orbit
    windows marked.  No model: stage 7 fits the transit and the systematics
    (its figures show them).

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration.
    out_dir : str or Path, optional
        Output folder; default ``output_dir/figures``.

    Returns
    -------
    Path
        ``white_light_curve.png``.
    """
    run = WHITE_LIGHT_CURVE.open(config, out_dir=out_dir)
    cfg = run.cfg
    lcs, _ = _light_curves(run)
    times = np.asarray(lcs["TIME"], float)
    x, xlabel, t0 = _time_axis(cfg, times)
    white, white_err = (np.asarray(lcs[k], float) for k in ("WHITE", "WHITE_ERR"))
    wbox = np.asarray(lcs["WHITE_BOX"], float)

    fig = new_figure((10, 4.8))
    top = fig.add_subplot()
    if cfg.transit is not None:
        span = x.max() - x.min() if len(x) > 1 else 1.0
        fine_x = np.linspace(x.min() - 0.05 * span, x.max() + 0.05 * span, 1000)
        inside = lc.transit_shape(cfg.transit, cfg.transit_mid, t0 + fine_x / 24.0) > 0
        if inside.any():
            top.axvspan(fine_x[inside][0], fine_x[inside][-1], color="0.9", zorder=0,
                        label="transit window (config)")
    if "ORBIT" in lcs.colnames:
        orbit = np.asarray(lcs["ORBIT"])
        for k in np.unique(orbit)[1:]:
            top.axvline(x[orbit == k][0], color="0.75", lw=0.8, ls=":")
    top.plot(x, wbox, "s", mfc="none", color=BOX_COLOUR, ms=5, label="box extraction (WHITE_BOX)")
    top.errorbar(x, white, white_err, fmt="o", color=OPTIMAL_COLOUR, ms=4, capsize=2,
                 label="optimal extraction (WHITE ± WHITE_ERR)")
    top.set_xlabel(xlabel)
    top.set_ylabel("normalised flux")
    top.set_title(f"White light curve, {len(x)} frames, as measured (orbit windows: dotted; "
                  f"the fit: stage 7's figures)", fontsize=10)
    top.legend(fontsize=8, loc="best")
    return run.save(fig)


