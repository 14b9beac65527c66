"""Figure of stage 2 (background and final frames): Science, Dark, Background, Final.

Reproduces the seed's *Original_Science_Image_Pre_Infill_Combined*,
*Dark_Frame_Combined*, *Recreated_Back_Combined* and
*Final_Frame_Before_Infill_Combined* as the four panels of one figure
(``frames_science_dark_background_final.png``, :func:`plot_frames`): Science,
Dark, Background and Final Frame (before infill) of one frame; and each frame's fitted
excess over the darks (``background_excess.png``, :func:`plot_background_excess`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.fitsio import header_values, read_image
from .drawing import XLABEL, figure_rows, new_figure, show, trace_rows
from .inputs import FigureSpec, spectral_mask

__all__ = ["FRAMES", "plot_frames", "EXCESS", "plot_background_excess"]

FRAMES = FigureSpec("frames_science_dark_background_final.png",
                    needs=("background", "final_no_infill"))


def _closest_dark(cfg, science):
    """The dark with the CCD temperature (``ccdtemp_key``) closest to the science frame's, and a note."""
    darks = cfg.dark_paths()
    t_sci = header_values([science], cfg.ccdtemp_key)[0]
    t_sci = None if np.isnan(t_sci) else t_sci
    if t_sci is None:
        return darks[0], "(first dark)"
    temps = header_values(darks, cfg.ccdtemp_key)
    if not np.isfinite(temps).any():
        return darks[0], "(first dark)"
    i = int(np.nanargmin(np.abs(temps - t_sci)))
    return darks[i], f"(CCD {temps[i]:.2f} C, closest to the science frame's {t_sci:.2f} C)"


@FRAMES.draws
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
    run = FRAMES.open(config, frame_index, out_dir)
    cfg, science = run.cfg, run.science
    dark_path, dark_note = _closest_dark(cfg, science)
    images = [
        (read_image(science, cfg.missing_value), f"Science Frame {science.name}"),
        (read_image(dark_path, cfg.missing_value), f"Dark Frame {dark_path.name} {dark_note}"),
        (read_image(run.paths["background"]), f"Background Frame of {science.name} "
                                              f"(proxy pixels' science values)"),
        (read_image(run.paths["final_no_infill"]), f"Final Frame of {science.name} before "
                                                   f"infill (Science - Background)"),
    ]
    mask = spectral_mask(cfg, run.layout, images[0][0].shape)
    lo, hi = trace_rows(mask)
    fig, axes = figure_rows([hi - lo] * 4, width=12.0)
    for ax, (image, title) in zip(axes, images):
        show(ax, image, title, rows=(lo, hi))
    axes[-1].set_xlabel(XLABEL)
    return run.save(fig)


EXCESS = FigureSpec("background_excess.png", needs=("background",))


@EXCESS.draws
def plot_background_excess(config, frame_index=None, out_dir=None) -> Path:
    """Each science frame's fitted excess over the darks (stage 2, ``scattered_light_order``).

    Two panels over the frames' times: the excess field's change from the
    first to the last column and from the first to the last row (``SLGRADX``,
    ``SLGRADY``, ADU: scattered light that changes across the frame, which the
    proxies would otherwise carry into the background), and its slope in the
    dark level (``SLTSLOPE``: the frame's dark current over the darks' minus
    one) against the CCD temperature.  No seed figure; new with issue 20.

    Parameters
    ----------
    config : Config or str or Path
    out_dir : str or Path, optional

    Returns
    -------
    Path
        ``background_excess.png``; frames without the fit (order 0) are left out.
    """
    run = EXCESS.open(config, None, out_dir)          # every frame: frame_index is not used
    cfg = run.cfg
    paths = [run.layout.background(p) for p in cfg.science_paths()]
    gx, gy, slope = (header_values(paths, key) for key in ("SLGRADX", "SLGRADY", "SLTSLOPE"))
    times = header_values(paths, cfg.time_key)
    temps = header_values(paths, cfg.ccdtemp_key)
    t = (times - np.nanmin(times)) * 24.0 if np.isfinite(times).any() else np.arange(len(paths))
    fig = new_figure((12.0, 4.2))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    left.plot(t, gx, "o-", ms=3, lw=0.8, label="first to last column (SLGRADX)")
    left.plot(t, gy, "s-", ms=3, lw=0.8, label="first to last row (SLGRADY)")
    left.axhline(0.0, color="0.6", lw=0.6)
    left.set_xlabel("hours since the first frame" if np.isfinite(times).any() else "frame")
    left.set_ylabel("change of the excess across the frame [ADU]")
    left.set_title("scattered light the darks do not hold")
    left.legend(fontsize=8)
    right.plot(temps, slope, "o", ms=3)
    right.axhline(0.0, color="0.6", lw=0.6)
    right.set_xlabel(f"CCD temperature ({cfg.ccdtemp_key}) [C]")
    right.set_ylabel("excess per ADU of dark level (SLTSLOPE)")
    right.set_title("dark current over the darks' median - 1")
    if not np.isfinite(gx).any():
        left.text(0.5, 0.5, "no excess fit (scattered_light_order: 0)", ha="center",
                  transform=left.transAxes)
    return run.save(fig)
