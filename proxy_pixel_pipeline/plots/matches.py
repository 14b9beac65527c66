"""Figures of stage 1 (proxy matches): the pixel map and one matched pair.

Reproduces the seed's *Spectral_vs_NonSpectral_Pixels*
(``spectral_vs_nonspectral.png``, :func:`plot_pixel_map`: the spectral mask
against the rest of the CCD, with the pixels excluded from matching -- hot,
... -- marked) and its *Proxy_Match_Comparison*,
*Proxy_Match_Comparison_Residuals* and
*Proxy_Match_Comparison_Residuals_Histogram* as the three panels of one figure
(``proxy_match_comparison.png``, :func:`plot_proxy_match`: one matched pair's
dark series, their residual, and its histogram).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from matplotlib import colors as mcolors
from matplotlib.patches import Patch

from ..errors import PipelineError
from ..io.fitsio import read_image
from ..flags import PixelFlag
from ..io.products import read_matches, read_spectral_mask
from .drawing import XLABEL, YLABEL, describe, figure_rows, integer_bins, new_figure, trace_rows
from .inputs import FigureSpec

__all__ = ["PIXEL_MAP", "PROXY_MATCH", "plot_pixel_map", "plot_proxy_match"]

PIXEL_MAP = FigureSpec("spectral_vs_nonspectral.png", needs=("matches",))
PROXY_MATCH = FigureSpec("proxy_match_comparison.png", needs=("matches",))

# Why a pixel was excluded, in the legend's words.
_EXCLUSIONS = {PixelFlag.HOT: "hot", PixelFlag.FEW_SAMPLES: "few valid darks",
               PixelFlag.CONSTANT: "constant", PixelFlag.NO_PROXY: "no proxy"}


@PIXEL_MAP.draws
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
    run = PIXEL_MAP.open(config, out_dir=out_dir)
    matches = run.paths["matches"]
    mask = read_spectral_mask(matches)
    with fits.open(matches) as hdul:
        pixflags = hdul["PIXFLAGS"].data.astype(np.uint8)
    spectral, _, table = read_matches(matches)
    spec_flag = np.zeros(mask.shape, np.uint8)
    spec_flag[spectral[:, 0], spectral[:, 1]] = np.asarray(table["FLAG"])
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

    spec_counts = {k: int(np.count_nonzero(excluded_spec & (spec_flag & b != 0)))
                   for b, k in _EXCLUSIONS.items()}
    cand_counts = {k: int(np.count_nonzero(excluded_cand & (pixflags & b != 0)))
                   for b, k in _EXCLUSIONS.items() if b != PixelFlag.NO_PROXY}

    ny, nx = mask.shape
    lo, hi = trace_rows(mask)
    fig, axes = figure_rows([ny, hi - lo], width=12.0)
    for ax, rows in zip(axes, [(0, ny), (lo, hi)]):
        r0, r1 = rows
        ax.imshow(category[r0:r1], cmap=cmap, norm=norm, origin="lower", interpolation="nearest",
                  extent=(-0.5, nx - 0.5, r0 - 0.5, r1 - 0.5), aspect="auto")
        for sel, colour in ((excluded_cand, palette[2]), (excluded_spec, palette[3])):
            yy, xx = np.nonzero(sel[r0:r1])
            ax.scatter(xx, yy + r0, s=14 if r1 - r0 < ny else 9, facecolors="none",
                       edgecolors=colour, linewidths=0.8)
        ax.set_xlabel(XLABEL)
        ax.set_ylabel(YLABEL)
        ax.set_xlim(-0.5, nx - 0.5)
    axes[0].set_title(f"Spectral vs non-spectral pixels ({Path(run.cfg.spectral_mask).name}, "
                      f"{ny} x {nx}); excluded pixels circled")
    axes[1].set_title(f"Zoom on the trace, rows {lo}-{hi - 1}")
    handles = [
        Patch(color=palette[0], label=f"non-spectral (candidate proxies): {n_cand}"),
        Patch(color=palette[1], label=f"spectral (mask): {n_spec}, "
                                      f"{n_spec - int(excluded_spec.sum())} with a proxy"),
        Patch(color=palette[2], label=f"non-spectral excluded: {int(excluded_cand.sum())} "
                                      f"({describe(cand_counts)})"),
        Patch(color=palette[3], label=f"spectral without proxy: {int(excluded_spec.sum())} "
                                      f"({describe(spec_counts)})"),
    ]
    axes[1].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.32), ncol=2,
                   fontsize=8, frameon=False)
    return run.save(fig)


@PROXY_MATCH.draws
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
    run = PROXY_MATCH.open(config, out_dir=out_dir)
    cfg, matches = run.cfg, run.paths["matches"]
    spectral, proxy, table = read_matches(matches)
    score = np.asarray(table["SCORE"], float)
    score = score[:, 0] if score.ndim == 2 else score
    matched = np.nonzero((np.asarray(table["FLAG"]) == 0) & (proxy[:, 0, 0] >= 0)
                         & np.isfinite(score))[0]
    if row is None:
        if not len(matched):
            raise PipelineError(f"{matches}: no matched spectral pixel to show")
        row = int(matched[np.argsort(score[matched], kind="stable")[len(matched) // 2]])
    elif not 0 <= row < len(table) or proxy[row, 0, 0] < 0:
        raise PipelineError(f"{matches}: row {row} is not a matched spectral pixel")
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
        return np.asarray(table[name][row], float).ravel()[0]

    fig = new_figure((11, 8))
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
        bins = integer_bins(values) if np.allclose(values, np.round(values)) else "auto"
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
    return run.save(fig)
