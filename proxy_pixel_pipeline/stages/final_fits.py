"""Stage 4: double-Gaussian fits of every Final Frame's column bins.

Each bin is fitted with the peak ratio held at the Median Frame fit's (stage 3);
a fit that fails or is unphysical falls back to the scaled median fit and is
flagged.  Frames are spread over the ranks; rank 0 writes one table per frame,
``output_dir/final_fits/<science file name>`` (extension ``FITS``).
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..io.fitsio import check_frames, read_image, write_fits
from ..runtime.layout import Layout
from ..runtime.logs import get_logger
from ..io.products import read_profile_fits, read_spectral_mask
from ..flags import FitFlag
from ..science.profiles import ProfileFits, binned_profiles, fit_final_profiles
from ..runtime.staging import StagedOutputs
from .common import check_previous, map_frames
from .median_fits import fits_to_records, records_to_fits, summarize

__all__ = ["run"]


def run(cfg, comm, overwrite=False):
    """Run stage 4.

    Parameters
    ----------
    cfg : Config
    comm : MPI communicator
    overwrite : bool
        Replace existing outputs.
    """
    log = get_logger()
    layout = Layout(cfg.output_dir)
    paths = reference = staged = None
    finished = False
    if comm.rank == 0:
        paths = cfg.science_paths()
        for p in paths:         # stage 2 first: a stale stage 2 makes stage 3 stale too
            check_previous(layout.final_no_infill(p), cfg, 2,
                           made_from=[layout.matches])
        # The Median Frame fits are made from these Final Frames (one stage-2 run).
        check_previous(layout.median_fits, cfg, 3, made_from=[layout.final_no_infill(paths[0])])
        check_frames(map(layout.final_no_infill, paths), read_spectral_mask(layout.matches).shape)
        staged = StagedOutputs(cfg, 4, science_paths=paths,
                               inputs=[layout.median_fits, *map(layout.final_no_infill, paths)])
        finished = staged.begin(overwrite)
        reference = fits_to_records(read_profile_fits(layout.median_fits))
    if comm.bcast(finished):
        return
    paths = comm.bcast(paths)
    reference = records_to_fits(comm.bcast(reference))
    empty = fits_to_records(ProfileFits.empty(len(reference)))

    def read(i):
        return read_image(layout.final_no_infill(paths[i]))

    def compute(stack):
        out = np.empty((len(stack), len(reference)), empty.dtype)
        for k, frame in enumerate(stack):
            _, profiles = binned_profiles(frame, cfg.bin_width)
            out[k] = fits_to_records(fit_final_profiles(profiles, reference))
        return {"fits": out}

    def write(i, out):
        result = records_to_fits(out["fits"])
        log.debug("%s: %s", paths[i].name, summarize(result))
        hdu = fits.table_to_hdu(result.to_table())
        hdu.name = "FITS"
        hdr = fits.Header()
        hdr["BINWIDTH"] = (cfg.bin_width, "columns per bin")
        hdr["NFALLBCK"] = (int(np.count_nonzero(result.flag & FitFlag.FALLBACK)), "bins using the scaled median fit")
        write_fits(staged.layout.final_fits(paths[i]), None, stage=4, config=cfg, header=hdr,
                   inputs=[layout.final_no_infill(paths[i]), layout.median_fits], extensions=[hdu])

    map_frames(comm, len(paths), read, compute, write, done=lambda i: staged.frame_done(paths[i]))
    if comm.rank == 0:
        staged.commit()
        log.info("wrote %d final-frame fit tables under %s", len(paths), layout.root / "final_fits")
