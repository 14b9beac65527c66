"""Drawing helpers shared by the figures: canvas, image panels, outlines, GIF writer, saving.

Reproduces no seed figure itself; every figure module draws with it so that
all figures share one look: matplotlib's Agg canvas (no display, no pyplot
state), images with row 0 at the bottom (as in DS9), a ZScale stretch
(:func:`zscale`) with a colour bar in ADU, empty (NaN) pixels white, only the
rows of the trace plus a margin (:func:`trace_rows`), and files written
atomically (:func:`save`, :func:`animate_profiles`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.visualization import ImageNormalize, ZScaleInterval
from matplotlib import colormaps
from matplotlib import colors as mcolors
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ..io.atomic import atomic_path
from ..flags import FitFlag, flag_names
from ..science.profiles import double_gaussian, scale_reference

__all__ = [
    "DPI", "XLABEL", "YLABEL", "BAD_COLOUR",
    "trace_rows", "new_figure", "figure_rows", "colormap", "scalar_mappable", "zscale",
    "show", "outline", "integer_bins", "describe", "fit_flag_label", "animate_profiles", "save",
]

DPI = 130             # PNG resolution
GIF_DPI = 80          # GIF resolution (frames of 560 x 360 pixels)
GIF_FPS = 4
MAX_GIF_FRAMES = 100
CMAP = "viridis"
BAD_COLOUR = "white"
XLABEL = "column (dispersion axis) [pix]"
YLABEL = "row (cross-dispersion) [pix]"


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


def new_figure(size) -> Figure:
    """A matplotlib figure on its own Agg canvas (no pyplot, no display).

    Parameters
    ----------
    size : (float, float)
        Width and height, inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def figure_rows(heights, width=12.0):
    """A figure of stacked full-width image panels with heights ~ rows shown.

    Parameters
    ----------
    heights : sequence of int
        Rows shown in each panel, top to bottom.
    width : float
        Figure width, inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : list of matplotlib.axes.Axes
        One per panel, top first.
    """
    heights = np.asarray(heights, float)
    # ~ 0.04 inch per row shown, limited so short panels stay readable.
    panel = np.clip(0.04 * heights, 1.3, 3.5)
    gap = 0.8   # inches between panels, for the x labels and the next title
    fig = new_figure((width, panel.sum() + gap * (len(panel) - 1) + 0.6))
    grid = fig.add_gridspec(len(heights), 1, height_ratios=panel, hspace=gap / panel.mean())
    axes = [fig.add_subplot(grid[i]) for i in range(len(heights))]
    return fig, axes


def colormap(name=CMAP):
    """The named colour map with empty (NaN, masked) pixels in :data:`BAD_COLOUR`."""
    return colormaps[name].with_extremes(bad=BAD_COLOUR)


def scalar_mappable(cmap, vmin, vmax):
    """A linear colour scale from ``vmin`` to ``vmax``, for a colour bar without an image."""
    return ScalarMappable(norm=mcolors.Normalize(vmin, vmax), cmap=cmap)


def zscale(image):
    """ZScale stretch of the finite pixels (linear), for ImageNormalize.

    ZScale does not tighten on images that are mostly a bright trace on
    noise (a Final Frame: its limits are then the extreme pixels), so the
    limits are also kept within the 0.5-99.8 percentiles.

    Parameters
    ----------
    image : array_like
        The pixels shown (NaN ignored).

    Returns
    -------
    matplotlib.colors.Normalize
        ``ImageNormalize`` between the limits (0-1 for an empty image).
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


def show(ax, image, title, rows=None, columns=None, norm=None):
    """Image panel with pixel-centred coordinates, ZScale stretch and ADU colour bar.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    image : ndarray, 2D
        The whole frame (NaN shown white).
    title : str
    rows, columns : (int, int), optional
        First and one-past-last row (column) shown; default all.
    norm : matplotlib.colors.Normalize, optional
        Stretch; default :func:`zscale` of the pixels shown.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    ny, nx = image.shape
    r0, r1 = rows if rows is not None else (0, ny)
    c0, c1 = columns if columns is not None else (0, nx)
    cut = image[r0:r1, c0:c1]
    norm = norm if norm is not None else zscale(cut)
    # Pixels stay sharp while the panel has a screen pixel per column; a
    # wider frame (CUTE: 2048 columns) is antialiased rather than decimated.
    width_px = ax.get_position().width * ax.figure.get_figwidth() * DPI
    interpolation = "nearest" if cut.shape[1] <= width_px else "antialiased"
    im = ax.imshow(np.ma.masked_invalid(cut), origin="lower", cmap=colormap(), norm=norm,
                   interpolation=interpolation, aspect="auto",
                   extent=(c0 - 0.5, c1 - 0.5, r0 - 0.5, r1 - 0.5))
    ax.set_title(title, fontsize=10)
    inches = ax.get_position().height * ax.figure.get_figheight()
    ax.set_ylabel(YLABEL if inches >= 2.2 else "row [pix]")
    ax.figure.colorbar(im, ax=ax, label="ADU", pad=0.01, fraction=0.05, extend="both")
    return im


def outline(ax, mask, colour, lw=0.7):
    """Draw the outline of the True pixels of ``mask`` (pixel edges) inside the current view.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Panel in pixel coordinates (as drawn by :func:`show`); its limits are kept.
    mask : array_like of bool, 2D
        Pixels to outline, in frame coordinates.
    colour : str
    lw : float
        Line width, points.
    """
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


def integer_bins(values):
    """Histogram bin edges for integer values: centred on integers, at most ~40 bins.

    Parameters
    ----------
    values : ndarray
        Finite values, whole numbers.

    Returns
    -------
    ndarray
        Bin edges.
    """
    lo, hi = np.floor(values.min()), np.ceil(values.max())
    step = max(1.0, np.ceil((hi - lo + 1) / 40))
    return np.arange(lo - 0.5, hi + step + 0.5, step)


def describe(counts) -> str:
    """``'3 hot, 1 constant'`` from a dict of counts (``'none'`` if all zero)."""
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none"


def fit_flag_label(flag) -> str:
    """A fit flag in words: ``'GOOD (double)'``, ``'SINGLE'``, ``'SINGLE|FALLBACK'``..."""
    return flag_names(FitFlag, flag) or "GOOD (double)"


def _scaled_reference(params, y, profile, y_fine):
    """Reference fit's shape scaled to the profile (stage 4's :func:`scale_reference`)."""
    good = np.isfinite(profile)
    if not np.all(np.isfinite(params)) or not good.any():
        return [], []
    k, c, *_ = scale_reference(y[good], profile[good], params)
    return y_fine, k * double_gaussian(y_fine, *params[:6], 0.0) + c


def animate_profiles(fits_, profiles, rows, path, what, ylabel, reference=None) -> Path:
    """Write a GIF of the binned profiles and their fits over the bins (<= 100 frames).

    Each frame shows one bin: its profile (points), the double-Gaussian fit
    and its two components on the fitted offset, and optionally a reference
    fit's shape scaled to the points; the axes are the same in every frame.

    Parameters
    ----------
    fits_ : ProfileFits
        One fit per bin.
    profiles : ndarray, shape (n_bins, n_rows)
        Binned profiles, ADU.
    rows : (int, int)
        First and one-past-last row shown.
    path : Path
        GIF written (atomically).
    what : str
        Frame named in the titles.
    ylabel : str
    reference : ProfileFits, optional
        Fits whose shape is drawn scaled to each bin's profile (the Median
        Frame's, under a Final Frame's fits).

    Returns
    -------
    Path
        ``path``.
    """
    lo, hi = rows
    y_all = np.arange(profiles.shape[1])
    sel = slice(lo, hi)
    y_fine = np.linspace(lo, hi - 1, 300)
    n_bins = len(fits_)
    bins = np.unique(np.linspace(0, n_bins - 1, min(n_bins, MAX_GIF_FRAMES)).round().astype(int))
    # Fixed axes: the range of the data and fits over all bins shown.
    shown = [profiles[:, sel][np.isfinite(profiles[:, sel])]]
    for b in bins:
        if np.all(np.isfinite(fits_.params[b])):
            shown.append(double_gaussian(y_fine, *fits_.params[b]))
    shown = np.concatenate(shown) if shown else np.zeros(1)
    shown = shown[np.isfinite(shown)]
    ymin, ymax = (np.percentile(shown, [0, 99.9]) if shown.size else (0.0, 1.0))
    pad = 0.06 * (ymax - ymin or 1.0)

    fig = new_figure((7, 4.5))
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
    ax.set_xlabel(YLABEL)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    title = ax.set_title("", fontsize=9)
    writer = PillowWriter(fps=GIF_FPS)
    with atomic_path(path) as tmp, writer.saving(fig, str(tmp), dpi=GIF_DPI):
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
                           f"flag {fit_flag_label(fits_.flag[b])}{extra}")
            writer.grab_frame()
    return Path(path)


def save(fig, path, dpi=DPI) -> Path:
    """Write ``fig`` to ``path`` atomically (a reader never sees half a file).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        Its folder must exist.
    dpi : float

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Path(path)
