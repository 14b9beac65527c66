"""Stage 3: the Median Frame and double-Gaussian fits of its column bins.

Rank 0 reads stage 2's Final Frames (science - background, before infill) and
forms the per-pixel median (missing samples skipped): the Median Frame of the
background-subtracted frames, as the original code takes it (the raw science
frames' median carries the per-pixel dark pattern, which on the ``cute``
preset made the single/double test call true doubles single).  The bins'
median profiles, over the rows of the spectral trace and a few beyond, are
scattered over the ranks, fitted, gathered, and written by rank 0:

* ``output_dir/median_frame.fits``: the Median Frame (primary HDU);
* ``output_dir/median_fits.fits``: one table row per bin (extension ``FITS``:
  parameters, uncertainties, peak ratio, reduced chi2, flag) and the binned
  profiles (extension ``PROFILES``).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.ndimage import binary_dilation
from astropy.io import fits

from ..flags import FitFlag
from ..io.fitsio import check_frames, read_stack
from ..io.products import read_spectral_mask
from ..runtime.parallel import gather_rows, partition, scatter_rows
from ..science.profiles import ProfileFits, binned_profiles, fit_median_profiles
from .base import StageRunner

__all__ = ["MedianFits", "fits_to_records", "records_to_fits", "trace_band"]

TRACE_MARGIN = 5   # rows beyond the spectral mask that still inform the profile's constant


def fits_to_records(profile_fits) -> np.ndarray:
    """ProfileFits as a numpy structured array (one record per bin), for MPI."""
    return np.asarray(profile_fits.to_table().as_array())


def records_to_fits(records) -> ProfileFits:
    """Inverse of :func:`fits_to_records`."""
    from astropy.table import Table

    return ProfileFits.from_table(Table(records))


def summarize(profile_fits) -> str:
    """'n good, n single, n fallback, n failed' for the log."""
    flag = np.asarray(profile_fits.flag)
    parts = {"double": np.count_nonzero(flag == 0),
             "single": np.count_nonzero(flag & FitFlag.SINGLE),
             "fallback": np.count_nonzero(flag & FitFlag.FALLBACK),
             "failed": np.count_nonzero(flag & FitFlag.FAILED)}
    return ", ".join(f"{v} {k}" for k, v in parts.items() if v)


def trace_band(mask, margin=TRACE_MARGIN):
    """The spectral mask grown by ``margin`` rows up and down.

    The profile fits use only these rows: far from the trace the background's
    own gradient would pull the fitted constant.
    """
    return binary_dilation(mask, structure=np.ones((2 * margin + 1, 1), bool))


class MedianFits(StageRunner):
    """Stage 3: the Median Frame of the Final Frames and the fits of its column bins."""

    number = 3

    def check(self):
        self.paths = [self.layout.final_no_infill(p) for p in self.science]
        self.mask = read_spectral_mask(self.layout.matches)      # the trace stage 1 matched
        check_frames(self.paths, self.mask.shape)

    def process(self):
        cfg, comm, log = self.cfg, self.comm, self.log
        profiles = edges = median = None
        if self.rank0:
            stack = read_stack(self.paths)      # missing pixels are NaN in stage 2's products
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # pixels missing in every frame
                median = np.nanmedian(stack, axis=0).astype(np.float32)
            del stack
            band = trace_band(self.mask)
            edges, profiles = binned_profiles(np.where(band, median, np.nan), cfg.bin_width)
            log.info("Median Frame of %d Final Frames; %d bins of %d columns", len(self.paths),
                     len(profiles), cfg.bin_width)
        edges = comm.bcast(edges)
        n_bins = len(edges) - 1
        counts = partition(n_bins, comm.size)
        first = int(np.sum(counts[:comm.rank]))
        local = scatter_rows(comm, profiles, counts)
        result = fit_median_profiles(local, edges=edges[first:first + counts[comm.rank] + 1])
        records = gather_rows(comm, fits_to_records(result), counts)
        if self.rank0:
            table = records_to_fits(records)
            log.info("median fits: %s", summarize(table))
            hdr = fits.Header()
            hdr["BINWIDTH"] = (cfg.bin_width, "columns per bin")
            self.write("median_frame", median, header=hdr, bunit="adu")
            fits_hdu = fits.table_to_hdu(table.to_table())
            fits_hdu.name = "FITS"
            prof_hdu = fits.ImageHDU(profiles.astype(np.float32), name="PROFILES")
            prof_hdu.header["BUNIT"] = "adu"
            prof_hdu.header["COMMENT"] = "binned median column profiles, one row per bin"
            self.write("median_fits", header=hdr, extensions=[fits_hdu, prof_hdu])
            log.info("wrote %s and %s", self.layout.median_frame, self.layout.median_fits)
