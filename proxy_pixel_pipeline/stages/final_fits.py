"""Stage 4: double-Gaussian fits of every Final Frame's column bins.

Each bin is fitted with the peak ratio held at the Median Frame fit's (stage 3);
a fit that fails or is unphysical falls back to the scaled median fit and is
flagged.  Frames are spread over the ranks; rank 0 writes one table per frame,
``output_dir/final_fits/<science file name>`` (extension ``FITS``).
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from ..flags import FitFlag
from ..io.fitsio import check_frames, read_image
from ..io.products import read_profile_fits, read_spectral_mask
from ..science.profiles import ProfileFits, binned_profiles, fit_final_profiles
from .base import FrameStage
from .median_fits import fits_to_records, records_to_fits, summarize

__all__ = ["FinalFits"]


class FinalFits(FrameStage):
    """Stage 4: the double-Gaussian fits of every Final Frame's column bins."""

    number = 4

    def check(self):
        check_frames(map(self.layout.final_no_infill, self.science),
                          read_spectral_mask(self.layout.matches).shape)

    def prepare(self):
        reference = None
        if self.rank0:
            reference = fits_to_records(read_profile_fits(self.layout.median_fits))
        self.reference = records_to_fits(self.comm.bcast(reference))
        self.empty = fits_to_records(ProfileFits.empty(len(self.reference)))

    def read_frame(self, i):
        return read_image(self.layout.final_no_infill(self.science[i]))

    def process_frames(self, stack):
        out = np.empty((len(stack), len(self.reference)), self.empty.dtype)
        for k, frame in enumerate(stack):
            _, profiles = binned_profiles(frame, self.cfg.bin_width)
            out[k] = fits_to_records(fit_final_profiles(profiles, self.reference))
        return {"fits": out}

    def write_frame(self, i, out):
        result = records_to_fits(out["fits"])
        self.log.debug("%s: %s", self.science[i].name, summarize(result))
        hdu = fits.table_to_hdu(result.to_table())
        hdu.name = "FITS"
        hdr = fits.Header()
        hdr["BINWIDTH"] = (self.cfg.bin_width, "columns per bin")
        hdr["NFALLBCK"] = (int(np.count_nonzero(result.flag & FitFlag.FALLBACK)),
                           "bins using the scaled median fit")
        self.write("final_fits", frame=self.science[i], header=hdr, extensions=[hdu])

    def finish(self):
        self.log.info("wrote %d final-frame fit tables under %s", len(self.science),
                      self.layout.root / "final_fits")
