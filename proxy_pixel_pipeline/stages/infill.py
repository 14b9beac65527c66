"""Stage 5: infill empty and negative pixels, then remove cosmic rays.

For each Final Frame, pixels of the spectral trace that are empty (hot,
missing, no proxy) or negative (below ``-negative_sigma`` times their noise)
take the value of that frame's fitted profile
(stage 4); then L.A.Cosmic (``lacosmic.remove_cosmics``) cleans the frame with
an error model built from the gain, the signal and the per-pixel noise of the
background subtraction measured over the darks in stage 1.

Output, per science frame: ``output_dir/final/<science file name>`` with the
cleaned frame in the primary HDU and the masks of infilled (``INFILLED``) and
cosmic-ray (``COSMIC``) pixels as extensions.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..fits_io import observation_header, read_image, write_fits
from ..infill import background_noise_image, error_model, infill, remove_cosmic_rays
from ..layout import Layout
from ..logs import get_logger
from ..parallel import bcast_array
from ..products import read_matches, read_profile_fits, read_spectral_mask
from ..profiles import model_frame
from ..staging import StagedOutputs
from .common import check_previous, map_frames, refuse_overwrite

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
    paths = region = noise = staged = None
    finished = False
    if comm.rank == 0:
        check_previous(layout.matches, cfg, 1)
        paths = cfg.science_paths()
        for p in paths:
            check_previous(layout.final_no_infill(p), cfg, 2,
                           made_from=[layout.matches])
            check_previous(layout.final_fits(p), cfg, 4,
                           made_from=[layout.final_no_infill(p), layout.median_fits])
        refuse_overwrite(layout.stage_outputs(5, paths), overwrite)
        staged = StagedOutputs(cfg, 5, science_paths=paths, inputs=[
            layout.matches, *map(layout.final_no_infill, paths), *map(layout.final_fits, paths)])
        finished = staged.begin()
    if comm.bcast(finished):
        return
    if comm.rank == 0:
        spectral, _, table = read_matches(layout.matches)
        region = read_spectral_mask(layout.matches)
        noise = background_noise_image(spectral, table, region.shape, cfg.gain, cfg.read_noise)
    paths = comm.bcast(paths)
    region = bcast_array(comm, region)
    noise = bcast_array(comm, noise)

    def read(i):
        # Frame and its fitted model travel together to the rank that cleans them.
        final = read_image(layout.final_no_infill(paths[i]))
        model = model_frame(read_profile_fits(layout.final_fits(paths[i])), final.shape)
        return np.stack([final, model.astype(np.float32)])

    def compute(stack):
        n = len(stack)
        shape = stack.shape[2:]
        out = {"final": np.empty((n,) + shape, np.float32),
               "infilled": np.empty((n,) + shape, np.uint8),
               "cosmic": np.empty((n,) + shape, np.uint8)}
        for k, (final, model) in enumerate(stack):
            error = error_model(np.where(np.isfinite(model), model, 0.0), noise, cfg.gain)
            filled, infilled = infill(final, model, region=region, fill_negative=cfg.fill_negative,
                                      negative_limit=cfg.negative_sigma * error)
            cleaned, cosmic = remove_cosmic_rays(
                filled, error, contrast=cfg.lacosmic_contrast,
                cr_threshold=cfg.lacosmic_cr_threshold,
                neighbor_threshold=cfg.lacosmic_neighbor_threshold,
                maxiter=cfg.lacosmic_maxiter, region=region)
            out["final"][k], out["infilled"][k], out["cosmic"][k] = cleaned, infilled, cosmic
        return out

    def write(i, out):
        src = paths[i]
        ext = [fits.ImageHDU(out["infilled"], name="INFILLED"), fits.ImageHDU(out["cosmic"], name="COSMIC")]
        ext[0].header["COMMENT"] = "1 = pixel infilled from the stage 4 profile fit"
        ext[1].header["COMMENT"] = "1 = cosmic ray found and replaced by lacosmic"
        hdr = observation_header(src)
        hdr["NINFILL"] = (int(out["infilled"].sum()), "pixels infilled from the profile fit")
        hdr["NCOSMIC"] = (int(out["cosmic"].sum()), "cosmic-ray pixels replaced")
        write_fits(staged.layout.final(src), out["final"], stage=5, config=cfg, header=hdr, extensions=ext,
                   inputs=[layout.final_no_infill(src), layout.final_fits(src)], bunit="adu")
        log.debug("%s: %d infilled, %d cosmic-ray pixels", src.name, hdr["NINFILL"], hdr["NCOSMIC"])

    map_frames(comm, len(paths), read, compute, write, done=lambda i: staged.frame_done(paths[i]))
    if comm.rank == 0:
        staged.commit()
        log.info("wrote %d final frames under %s", len(paths), layout.root / "final")
