"""What stage 5 works on, assembled from its inputs (MPI-free: its figures use it too).

Every frame's trace pixels, their prediction from the series, noise and
data-quality bits: the stage-2 Final Frames and backgrounds, the stage-4
profile models, the match table; the science is
:func:`~..science.series.series_prediction` and
:func:`~..science.series.refit_bins_without_hits`.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..flags import DQFlag, PixelFlag
from ..io.fitsio import read_image
from ..io.products import read_matches, read_profile_fits, read_spectral_mask
from ..science.noise import subtraction_noise
from ..science.profiles import model_frame
from ..science.series import refit_bins_without_hits, series_prediction

__all__ = ["stage5_series"]


def stage5_series(cfg, layout, paths):
    """What stage 5 works on: every frame's trace pixels, their prediction from the series,
    noise and data-quality bits (stage 5 and its figures).

    Parameters
    ----------
    cfg : Config
    layout : Layout
    paths : list of Path
        The science frames.

    Returns
    -------
    dict
        ``final``, ``model``, ``prediction``, ``z``, ``noise`` (float32) and
        ``dq`` (uint8), each (n_frames, n_trace_pixels); ``trace`` (flat
        indices of the trace pixels), ``region`` (the spectral mask) and
        ``temporal`` (whether the time-series check runs).
    """
    spectral, _, table = read_matches(layout.matches)
    region = read_spectral_mask(layout.matches)
    trace = np.flatnonzero(region)
    # Flags that hold in every frame, from the match table.
    match_flags = np.zeros(region.shape, np.uint8)
    match_flags[spectral[:, 0], spectral[:, 1]] = np.asarray(table["FLAG"])
    static = np.zeros(region.shape, np.uint8)
    static[(match_flags & PixelFlag.HOT) != 0] |= DQFlag.HOT.value
    static[(match_flags & ~np.uint8(PixelFlag.HOT)) != 0] |= DQFlag.NO_PROXY.value
    shape = (len(paths), len(trace))
    out = {name: np.empty(shape, np.float32) for name in ("final", "model", "noise")}
    out["dq"] = np.empty(shape, np.uint8)
    for f, path in enumerate(paths):
        final = read_image(layout.final_no_infill(path))
        model = model_frame(read_profile_fits(layout.final_fits(path)), final.shape)
        with fits.open(layout.background(path)) as hdul:
            bkg_err = hdul["BKG_ERR"].data if "BKG_ERR" in hdul else None
            hit = hdul["PROXYHIT"].data != 0 if "PROXYHIT" in hdul else np.zeros(region.shape, bool)
        noise = subtraction_noise(spectral, table, region.shape, cfg.gain, cfg.read_noise, bkg_err)
        dq = static.copy()
        dq[hit] |= DQFlag.PROXY_HIT.value
        dq[np.isnan(final) & (static == 0) & ~hit] |= DQFlag.EMPTY_INPUT.value
        for name, image in (("final", final), ("model", model), ("noise", noise), ("dq", dq)):
            out[name][f] = image.ravel()[trace]
    temporal = cfg.temporal_sigma > 0 and len(paths) >= cfg.temporal_min_frames
    columns = trace % region.shape[1]
    prior = out["noise"].copy()
    out["prediction"], out["z"], background = series_prediction(
        out["final"], out["model"], columns, prior, cfg.gain, min_frames=cfg.temporal_min_frames)
    if temporal:
        reference = read_profile_fits(layout.median_fits)
        width = int(reference.column_hi[0] - reference.column_lo[0])    # the bins stage 4 used
        width = width if width > 0 else cfg.bin_width
        if refit_bins_without_hits(out["final"], out["model"], out["z"], trace, region.shape,
                                   reference, width, cfg.temporal_sigma,
                                   cfg.temporal_neighbor_sigma, cfg.cosmic_grow):
            out["prediction"], out["z"], background = series_prediction(
                out["final"], out["model"], columns, prior, cfg.gain,
                min_frames=cfg.temporal_min_frames)
    out["noise"][:] = background            # measured along the series (see science.series)
    out.update(region=region, trace=trace, temporal=temporal)
    return out
