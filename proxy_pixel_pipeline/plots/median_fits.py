"""Figures of stage 3 (Median Frame and its fits).

Reproduces the seed's *Median_Frame_Combined* (``median_frame.png``,
:func:`plot_median_frame`), *Raw_Column_vs_Median_Column_Traces*
(``bin_columns_vs_median.png``, :func:`plot_bin_columns`: the columns of one
bin against the bin's median profile) and the animation *Median_Fits.gif*
(``median_fits.gif``, :func:`animate_median_fits`: the double-Gaussian fits of
the Median Frame's bins).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from ..errors import PipelineError
from ..io.fitsio import read_image
from ..flags import FitFlag
from ..io.products import read_profile_fits
from ..science.profiles import binned_profiles, double_gaussian
from .drawing import (XLABEL, YLABEL, animate_profiles, colormap, figure_rows, fit_flag_label,
                      new_figure, scalar_mappable, show, trace_rows)
from .inputs import FigureSpec, spectral_mask

__all__ = ["MEDIAN_FRAME", "BIN_COLUMNS", "MEDIAN_FITS_GIF", "plot_median_frame",
           "plot_bin_columns", "animate_median_fits", "median_fits_and_profiles"]

MEDIAN_FRAME = FigureSpec("median_frame.png", needs=("median_frame",))
BIN_COLUMNS = FigureSpec("bin_columns_vs_median.png", needs=("median_frame", "median_fits"))
MEDIAN_FITS_GIF = FigureSpec("median_fits.gif", needs=("median_fits",))


def median_fits_and_profiles(path, median, bin_width):
    """Stage-3 fits and the binned profiles they were fitted to.

    Parameters
    ----------
    path : Path
        ``median_fits.fits``.
    median : ndarray or None
        The Median Frame, to bin again when the file has no ``PROFILES``.
    bin_width : int

    Returns
    -------
    fits_ : ProfileFits
    profiles : ndarray, shape (n_bins, n_rows)
        The stored ``PROFILES``, else recomputed from ``median``.

    Raises
    ------
    PipelineError
        Neither stored profiles nor a Median Frame.
    """
    fits_ = read_profile_fits(path)
    profiles = None
    with fits.open(path) as hdul:
        if "PROFILES" in hdul:
            profiles = np.asarray(hdul["PROFILES"].data, float)
    if profiles is None or len(profiles) != len(fits_):
        if median is None:
            raise PipelineError(f"{path}: no PROFILES extension and no Median Frame")
        _, profiles = binned_profiles(median, bin_width)
    return fits_, profiles


@MEDIAN_FRAME.draws
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
    run = MEDIAN_FRAME.open(config, out_dir=out_dir)
    median = read_image(run.paths["median_frame"])
    n = len(run.cfg.science_paths())
    mask = spectral_mask(run.cfg, run.layout, median.shape)
    lo, hi = trace_rows(mask)
    ny = median.shape[0]
    fig, axes = figure_rows([ny, hi - lo], width=12.0)
    show(axes[0], median, f"Median Frame (per-pixel median of {n} science frames), whole frame")
    show(axes[1], median, f"Median Frame, trace rows {lo}-{hi - 1}", rows=(lo, hi))
    axes[-1].set_xlabel(XLABEL)
    return run.save(fig)


@BIN_COLUMNS.draws
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
    run = BIN_COLUMNS.open(config, out_dir=out_dir)
    median = read_image(run.paths["median_frame"])
    fits_, profiles = median_fits_and_profiles(run.paths["median_fits"], median, run.cfg.bin_width)
    if bin_index is None:
        width = np.asarray(fits_.column_hi) - np.asarray(fits_.column_lo)
        full = width == width.max()
        sep = np.where((np.asarray(fits_.flag) == FitFlag.GOOD) & full,
                       fits_.mu2 - fits_.mu1, -np.inf)
        bin_index = int(np.argmax(sep)) if np.isfinite(sep).any() else len(fits_) // 2
    if not 0 <= bin_index < len(fits_):
        raise PipelineError(f"bin_index {bin_index} out of range: {len(fits_)} bins")
    c0, c1 = int(fits_.column_lo[bin_index]), int(fits_.column_hi[bin_index])
    mask = spectral_mask(run.cfg, run.layout, median.shape)
    lo, hi = trace_rows(mask)
    rows = np.arange(lo, hi)
    fig = new_figure((9, 5.5))
    ax = fig.add_subplot()
    cmap = colormap("cividis")
    for k, c in enumerate(range(c0, c1)):
        ax.plot(rows, median[lo:hi, c], lw=0.7, alpha=0.7,
                color=cmap(k / max(c1 - c0 - 1, 1)),
                label="Median Frame columns (thin, colour = column)" if k == 0 else None)
    ax.plot(rows, profiles[bin_index, lo:hi], "k-", lw=3, label="bin median profile")
    y = np.linspace(lo, hi - 1, 400)
    if np.all(np.isfinite(fits_.params[bin_index])):
        ax.plot(y, double_gaussian(y, *fits_.params[bin_index]), "--", color="#e41a1c", lw=1.5,
                label=f"fit ({fit_flag_label(fits_.flag[bin_index])})")
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
    ax.set_xlabel(YLABEL)
    ax.set_ylabel("Median Frame value [ADU]")
    ax.set_title(f"Median Frame: the {c1 - c0} columns of bin {bin_index + 1}/{len(fits_)} "
                 f"(columns {c0}-{c1 - 1}) vs their median profile")
    ax.set_xlim(lo - 0.5, hi - 0.5)
    ax.legend(fontsize=9, loc="upper left")
    ax.grid(alpha=0.3)
    sm = scalar_mappable(cmap, c0, c1 - 1)
    fig.colorbar(sm, ax=ax, label="column [pix]", pad=0.01)
    return run.save(fig)


@MEDIAN_FITS_GIF.draws
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
    run = MEDIAN_FITS_GIF.open(config, out_dir=out_dir)
    layout = run.layout
    median = read_image(layout.median_frame) if layout.median_frame.is_file() else None
    fits_, profiles = median_fits_and_profiles(run.paths["median_fits"], median, run.cfg.bin_width)
    mask = spectral_mask(run.cfg, layout, (profiles.shape[1], int(fits_.column_hi.max())))
    lo, hi = trace_rows(mask)
    return animate_profiles(fits_, profiles, (lo, hi), run.output(),
                            "Median Frame", "Median Frame value [ADU]")
