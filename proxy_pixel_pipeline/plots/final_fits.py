"""Figure of stage 4 (Final Frame fits): the fits of one Final Frame's bins.

Reproduces the seed's animation *Final_Fits_GIF.gif* (``final_fits.gif``,
:func:`animate_final_fits`), with the Median Frame fit's shape scaled to each
bin for comparison.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PipelineError
from ..io.fitsio import read_image
from ..io.products import read_profile_fits
from ..science.profiles import binned_profiles
from .drawing import animate_profiles, trace_rows
from .inputs import FigureSpec, spectral_mask, stage_script

__all__ = ["FINAL_FITS_GIF", "animate_final_fits"]

FINAL_FITS_GIF = FigureSpec("final_fits.gif",
                            needs=("final_no_infill", "median_fits", "final_fits"))


@FINAL_FITS_GIF.draws
def animate_final_fits(config, frame_index=None, out_dir=None) -> Path:
    """GIF over the column bins of one Final Frame's profiles and fits.

    Reproduces the seed's *Final_Fits_GIF.gif*: for each bin, the binned
    profile of the Final Frame before infill (points; only spectral-mask
    rows exist), its stage-4 fit with the two components, and for
    comparison the Median Frame fit's shape scaled to the points as stage 4
    scales it for a fallback fit
    (:func:`~proxy_pixel_pipeline.science.profiles.scale_reference`: scale >= 0 and
    offset, linear least squares).

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

    Raises
    ------
    PipelineError
        A needed file is missing, or the fits were made with another
        ``bin_width``.
    """
    run = FINAL_FITS_GIF.open(config, frame_index, out_dir)
    cfg = run.cfg
    final = read_image(run.paths["final_no_infill"])
    fits_ = read_profile_fits(run.paths["final_fits"])
    reference = read_profile_fits(run.paths["median_fits"])
    edges, profiles = binned_profiles(final, cfg.bin_width)
    if len(edges) - 1 != len(fits_):
        raise PipelineError(f"{run.paths['final_fits']}: {len(fits_)} bins, but bin_width "
                            f"{cfg.bin_width} gives {len(edges) - 1}; "
                            f"rerun {stage_script('final_fits')}")
    lo, hi = trace_rows(spectral_mask(cfg, run.layout, final.shape))
    return animate_profiles(fits_, profiles, (lo, hi), run.output(),
                            f"Final Frame {run.science.name}", "Final Frame value [ADU]",
                            reference=reference)
