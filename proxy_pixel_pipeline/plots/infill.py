"""Figure of stage 5 (infill and cosmic-ray removal) of one Final Frame.

Reproduces the seed's *Final_Frame_After_Infill* and
*Final_Frame_After_Infill_And_CR_Removal* in one figure
(:func:`plot_final_infill`), with the infilled and cosmic-ray pixels marked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from matplotlib import colors as mcolors
from matplotlib.patches import Patch
from scipy import ndimage

from ..errors import PipelineError
from ..fits_io import read_image
from ..infill import background_noise_image, error_model, infill
from ..products import read_matches, read_profile_fits, read_spectral_mask
from ..profiles import model_frame
from .drawing import (BAD_COLOUR, XLABEL, new_figure, outline, scalar_mappable, show, trace_rows,
                      zscale)
from .inputs import FigureSpec, stage_script

__all__ = ["FINAL_INFILL", "plot_final_infill", "rebuild_infill"]

FINAL_INFILL = FigureSpec("final_infill_and_cosmic.png",
                          needs=("matches", "final_no_infill", "final_fits", "final"))


def rebuild_infill(cfg, matches, final_no_infill, final_fits):
    """The Final Frame after infill, before cosmic-ray removal, made again as stage 5 makes it.

    Stage 5 stores only the frame after cosmic-ray removal; this repeats its
    infill with the science module's functions: the background noise from
    the match table
    (:func:`~proxy_pixel_pipeline.infill.background_noise_image`), the noise
    model on the stage-4 model (:func:`~proxy_pixel_pipeline.infill.error_model`)
    and :func:`~proxy_pixel_pipeline.infill.infill` within the spectral mask.

    Parameters
    ----------
    cfg : Config
    matches, final_no_infill, final_fits : Path
        Stage 1's match table, the Final Frame before infill and its stage-4 fits.

    Returns
    -------
    before : ndarray of float32
        The Final Frame before infill.
    filled : ndarray of float32
        After infill.
    infilled : ndarray of bool
        The pixels infilled.
    region : ndarray of bool
        The spectral mask.
    """
    spectral, _, table = read_matches(matches)
    region = read_spectral_mask(matches)
    noise = background_noise_image(spectral, table, region.shape, cfg.gain, cfg.read_noise)
    before = read_image(final_no_infill)
    # As stage 5: the model in the frame's float32, no photon noise where it is NaN.
    model = model_frame(read_profile_fits(final_fits), before.shape).astype(np.float32)
    error = error_model(np.where(np.isfinite(model), model, 0.0), noise, cfg.gain)
    filled, infilled = infill(before, model, region=region, fill_negative=cfg.fill_negative,
                              negative_limit=cfg.negative_sigma * error)
    return before, filled, infilled, region


@FINAL_INFILL.draws
def plot_final_infill(config, frame_index=None, out_dir=None) -> Path:
    """Final Frame after infill and after cosmic-ray removal, changed pixels marked.

    Reproduces the seed's *Final_Frame_After_Infill* and
    *Final_Frame_After_Infill_And_CR_Removal*.  Panels, top to bottom: the
    Final Frame after infill (not stored by stage 5, so made again as stage
    5 makes it, :func:`rebuild_infill`, and checked against its stored
    ``INFILLED`` pixels); a map of the pixels stage 5 changed (infilled
    because empty, infilled because negative, cosmic ray); the frame after
    cosmic-ray removal with the cosmic-ray pixels outlined (magenta); and a
    zoom on the largest cosmic ray before and after, infilled pixels
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

    Raises
    ------
    PipelineError
        A needed file is missing, or the stored infilled pixels differ from
        the infill with the current settings (stage 5 made with others).
    """
    run = FINAL_INFILL.open(config, frame_index, out_dir)
    final_path = run.paths["final"]
    before, filled, infilled, mask = rebuild_infill(run.cfg, run.paths["matches"],
                                                    run.paths["final_no_infill"],
                                                    run.paths["final_fits"])
    with fits.open(final_path) as hdul:
        cleaned = hdul[0].data.astype(np.float32)
        stored = hdul["INFILLED"].data.astype(bool)
        cosmic = hdul["COSMIC"].data.astype(bool)
    if not np.array_equal(stored, infilled):
        raise PipelineError(f"{final_path}: {int(np.count_nonzero(stored != infilled))} "
                            f"infilled pixels differ from an infill with the current settings; "
                            f"rerun {stage_script('final')}")
    was_empty = infilled & ~np.isfinite(before)
    was_negative = infilled & np.isfinite(before)

    lo, hi = trace_rows(mask)
    norm = zscale(cleaned[lo:hi])
    name = run.science.name
    fig = new_figure((12, 11.5))
    grid = fig.add_gridspec(4, 2, height_ratios=[1, 1, 1, 1.3], hspace=0.55, wspace=0.18)
    ax1 = fig.add_subplot(grid[0, :])
    show(ax1, filled, f"Final Frame {name} after infill ({int(infilled.sum())} pixels infilled "
         f"from the stage-4 fits)", rows=(lo, hi), norm=norm)

    # Map of the pixels stage 5 changed.
    ax2 = fig.add_subplot(grid[1, :], sharex=ax1)
    category = np.where(mask, 0.0, np.nan)
    category[was_negative] = 1
    category[was_empty] = 2
    category[cosmic] = 3
    palette = ["#d9d9d9", "#fd8d3c", "#e41a1c", "#c51b8a"]
    cmap = mcolors.ListedColormap(palette).with_extremes(bad=BAD_COLOUR)
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
    spacer = fig.colorbar(scalar_mappable(cmap, 0, 1), ax=ax2, pad=0.01, fraction=0.05)
    spacer.ax.set_visible(False)

    ax3 = fig.add_subplot(grid[2, :], sharex=ax1)
    show(ax3, cleaned, f"Final Frame {name} after infill and cosmic-ray removal "
         f"({int(cosmic.sum())} cosmic-ray pixels replaced, outlined magenta)",
         rows=(lo, hi), norm=norm)
    outline(ax3, cosmic, "magenta", lw=1.0)
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
        outline(ax, cosmic, "magenta", lw=1.5)
        ax.set_xlabel(XLABEL)
        if k:
            ax.set_ylabel("")
    return run.save(fig)
