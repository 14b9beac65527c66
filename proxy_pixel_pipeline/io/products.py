"""Readers of the stages' table outputs, shared by the stages, figures and score.

Kept apart from :mod:`.stages` (which imports mpi4py and so starts MPI) so
that tools which only read results never touch MPI.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..runtime import registry
from ..errors import PipelineError
from .fitsio import read_image, read_table
from ..flags import DQFlag, PixelFlag
from ..science.infill import subtraction_noise
from ..science.profiles import ProfileFits, bin_edges, binned_profiles, fit_final_profiles, model_frame
from ..science.temporal import series_prediction, temporal_hits

__all__ = ["read_matches", "read_spectral_mask", "read_profile_fits", "stage5_series"]


def read_matches(path):
    """Read a stage-1 match table.

    Returns
    -------
    spectral : ndarray of int, shape (n, 2)
        Row and column of each spectral pixel.
    proxy : ndarray of int, shape (n, K, 2)
        Row and column of its K proxies, best first (-1 where none).
    table : astropy.table.Table
        The whole ``MATCHES`` table (scores, residual statistics, flags).
    """
    table = read_table(path, "MATCHES")
    spectral = np.stack([table["SPEC_Y"], table["SPEC_X"]], -1).astype(np.intp)
    py, px = np.asarray(table["PROXY_Y"]), np.asarray(table["PROXY_X"])
    if py.ndim == 1:
        py, px = py[:, None], px[:, None]
    return spectral, np.stack([py, px], -1).astype(np.intp), table


def read_spectral_mask(path):
    """The spectral mask (bool image) stage 1 stored in its match table (``SPECMASK``)."""
    with fits.open(path) as hdul:
        if "SPECMASK" not in hdul:
            raise PipelineError(f"{path}: no SPECMASK extension; rerun "
                                f"{registry.stage_of_output('matches').script}")
        return hdul["SPECMASK"].data.astype(bool)


def read_profile_fits(path, extname="FITS") -> ProfileFits:
    """Read the profile fits (one row per column bin) written by stage 3 or 4."""
    return ProfileFits.from_table(read_table(path, extname))


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
    if temporal and _refit_without_hits(cfg, layout, out, trace, region.shape):
        out["prediction"], out["z"], background = series_prediction(
            out["final"], out["model"], columns, prior, cfg.gain,
            min_frames=cfg.temporal_min_frames)
    out["noise"][:] = background            # measured along the series (see temporal)
    out.update(region=region, trace=trace, temporal=temporal)
    return out


def _refit_without_hits(cfg, layout, series, trace, shape):
    """Refit, without its time-series hits, each frame's profile in the bins that hold them.

    A long cosmic-ray streak along a row of a bin enters the bin's median
    profile, so the frame's stage-4 fit (and the prediction built on it) is
    pulled there; the fit of those bins is made again (stage 4's own
    function, the Median Frame fit as reference) with the hits left out.
    Returns whether any frame was refitted; ``series["model"]`` is updated.
    """
    reference = read_profile_fits(layout.median_fits)
    width = int(reference.column_hi[0] - reference.column_lo[0])    # the bins stage 4 used
    width = width if width > 0 else cfg.bin_width
    edges = bin_edges(shape[1], width)
    refitted = False
    for f in range(len(series["final"])):
        z = np.full(shape, np.nan)
        z.ravel()[trace] = series["z"][f]
        hits = temporal_hits(z, cfg.temporal_sigma, cfg.temporal_neighbor_sigma)
        if not hits.any():
            continue
        bins = np.unique(np.searchsorted(edges, np.nonzero(hits)[1], side="right") - 1)
        frame = np.full(shape, np.nan, np.float32)
        frame.ravel()[trace] = series["final"][f]
        frame[hits] = np.nan
        _, profiles = binned_profiles(frame, width)
        fitted = fit_final_profiles(profiles, reference)
        model = np.full(shape, np.nan)
        model.ravel()[trace] = series["model"][f]
        columns = np.concatenate([np.arange(edges[b], edges[b + 1]) for b in bins])
        model[:, columns] = model_frame(fitted, shape)[:, columns]
        series["model"][f] = model.ravel()[trace]
        refitted = True
    return refitted
