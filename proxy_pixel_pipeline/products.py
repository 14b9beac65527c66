"""Readers of the stages' table outputs, shared by the stages, figures and score.

Kept apart from :mod:`.stages` (which imports mpi4py and so starts MPI) so
that tools which only read results never touch MPI.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from . import registry
from .errors import PipelineError
from .fits_io import read_table
from .profiles import ProfileFits

__all__ = ["read_matches", "read_spectral_mask", "read_profile_fits"]


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
