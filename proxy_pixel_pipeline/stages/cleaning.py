"""Stage 5: infill empty and negative pixels, then remove cosmic rays.

Rank 0 first reads the whole series (:func:`..products.stage5_series`):
every trace pixel's value in every frame is predicted from the series
(:mod:`..temporal`: the frame's stage-4 profile model, the frame's flux, the
pixel's own correction learnt across frames), with its noise.  Then, frame by
frame on the ranks: a pixel far above its prediction is a cosmic ray
(``temporal_sigma``, grown into its neighbours); empty (hot, missing, no
proxy), negative (below ``-negative_sigma`` times the noise) and those pixels
take the prediction; L.A.Cosmic (``lacosmic.remove_cosmics``) then cleans
what the series cannot see.

Output, per science frame: ``output_dir/final/<science file name>`` with the
cleaned frame in the primary HDU and the extensions ``ERR`` (one-sigma error,
ADU), ``DQ`` (bits of :class:`..flags.DQFlag`, documented in ``FLAGDOC``),
``INFILLED`` (empty or negative pixels infilled) and ``COSMIC`` (cosmic-ray
pixels, either detector).
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..io.fitsio import check_frames, observation_header, write_fits
from ..flags import DQFlag, flagdoc
from ..science.infill import error_model, infill, remove_cosmic_rays
from ..runtime.layout import Layout
from ..runtime.logs import get_logger
from ..runtime.parallel import bcast_array
from ..io.products import read_spectral_mask, stage5_series
from ..runtime.staging import StagedOutputs
from ..science.temporal import temporal_hits
from .common import check_previous, map_frames

__all__ = ["run"]


def run(cfg, comm, overwrite=False):
    """Run stage 5.

    Parameters
    ----------
    cfg : Config
    comm : MPI communicator
    overwrite : bool
        Replace existing outputs.
    """
    log = get_logger()
    layout = Layout(cfg.output_dir)
    paths = staged = None
    finished = False
    if comm.rank == 0:
        check_previous(layout.matches, cfg, 1)
        paths = cfg.science_paths()
        for p in paths:
            for product in (layout.final_no_infill(p), layout.background(p)):
                check_previous(product, cfg, 2, made_from=[layout.matches])
            check_previous(layout.final_fits(p), cfg, 4,
                           made_from=[layout.final_no_infill(p), layout.median_fits])
        shape = read_spectral_mask(layout.matches).shape
        check_frames([*map(layout.final_no_infill, paths), *map(layout.background, paths)], shape)
        staged = StagedOutputs(cfg, 5, science_paths=paths, inputs=[
            layout.matches, *map(layout.final_no_infill, paths), *map(layout.background, paths),
            *map(layout.final_fits, paths)])
        finished = staged.begin(overwrite)
    if comm.bcast(finished):
        return
    series = None
    if comm.rank == 0:
        series = stage5_series(cfg, layout, paths)
        log.info("%d frames; time-series cosmic-ray check %s", len(paths),
                 "on" if series["temporal"] else
                 f"off (temporal_sigma 0 or fewer than {cfg.temporal_min_frames} frames)")
    paths = comm.bcast(paths)
    region = bcast_array(comm, series["region"] if series else None)
    temporal = comm.bcast(series["temporal"] if series else None)
    layers = ("final", "prediction", "z", "noise", "dq")

    def read(i):
        # Everything a rank needs for one frame, as frame-shaped layers.
        stack = np.full((len(layers),) + region.shape, np.nan, np.float32)
        for k, name in enumerate(layers):
            stack[k].ravel()[series["trace"]] = series[name][i]
        return stack

    def compute(stack):
        n = len(stack)
        shape = stack.shape[2:]
        out = {"final": np.empty((n,) + shape, np.float32),
               "err": np.empty((n,) + shape, np.float32),
               "dq": np.empty((n,) + shape, np.uint8),
               "infilled": np.empty((n,) + shape, np.uint8),
               "cosmic": np.empty((n,) + shape, np.uint8)}
        for k, (final, prediction, z, noise, dq) in enumerate(stack):
            error = error_model(np.nan_to_num(prediction), noise, cfg.gain)
            hits = (temporal_hits(z, cfg.temporal_sigma, cfg.temporal_neighbor_sigma) & region
                    if temporal else np.zeros(shape, bool))
            filled, infilled = infill(final, prediction, region=region,
                                      fill_negative=cfg.fill_negative,
                                      negative_limit=cfg.negative_sigma * error)
            filled[hits] = prediction[hits]        # a hit's value is the series' prediction
            cleaned, lacosmic = remove_cosmic_rays(
                filled, error, contrast=cfg.lacosmic_contrast,
                cr_threshold=cfg.lacosmic_cr_threshold,
                neighbor_threshold=cfg.lacosmic_neighbor_threshold,
                maxiter=cfg.lacosmic_maxiter, region=region)
            lacosmic &= ~hits
            infilled &= ~hits
            flags = np.nan_to_num(dq).astype(np.uint8)
            flags[infilled | hits] |= DQFlag.INFILLED.value
            flags[hits] |= DQFlag.COSMIC_TEMPORAL.value
            flags[lacosmic] |= DQFlag.COSMIC_LACOSMIC.value
            out["final"][k], out["infilled"][k], out["cosmic"][k] = cleaned, infilled, hits | lacosmic
            out["err"][k] = np.where(region, error, np.nan)
            out["dq"][k] = flags
        return out

    def write(i, out):
        src = paths[i]
        ext = [fits.ImageHDU(out["err"], name="ERR"), fits.ImageHDU(out["dq"], name="DQ"),
               fits.ImageHDU(out["infilled"], name="INFILLED"),
               fits.ImageHDU(out["cosmic"], name="COSMIC")]
        ext[0].header["BUNIT"] = "adu"
        ext[0].header["COMMENT"] = ("one-sigma uncertainty: photon noise of the predicted signal, "
                                    "the pixel's own noise and the background's")
        ext[1].header["FLAGDOC"] = flagdoc(DQFlag)
        ext[2].header["COMMENT"] = "1 = empty or negative pixel infilled from the profile model"
        ext[3].header["COMMENT"] = "1 = cosmic ray found (time series or lacosmic) and replaced"
        hdr = observation_header(src, cfg)
        hdr["NINFILL"] = (int(out["infilled"].sum()), "pixels infilled from the profile fit")
        hdr["NCOSMIC"] = (int(out["cosmic"].sum()), "cosmic-ray pixels replaced")
        hdr["NCRTIME"] = (int(np.count_nonzero(out["dq"] & DQFlag.COSMIC_TEMPORAL)),
                          "cosmic-ray pixels found along the time series")
        write_fits(staged.layout.final(src), out["final"], stage=5, config=cfg, header=hdr, extensions=ext,
                   inputs=[layout.final_no_infill(src), layout.final_fits(src)], bunit="adu")
        log.debug("%s: %d infilled, %d cosmic-ray pixels", src.name, hdr["NINFILL"], hdr["NCOSMIC"])

    map_frames(comm, len(paths), read, compute, write, done=lambda i: staged.frame_done(paths[i]))
    if comm.rank == 0:
        staged.commit()
        log.info("wrote %d final frames under %s", len(paths), layout.root / "final")

