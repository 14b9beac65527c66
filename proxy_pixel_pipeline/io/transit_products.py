"""Stage 7's products: the transit depths, the fit per visit and channel, the samples.

One writer and one reader per file (a contract users' tools read):

``transit_depths.fits``, extension ``DEPTHS``, one row per channel (``white``
first, then the channel's index as text): ``CHANNEL``, ``WAVELENGTH_LO``,
``WAVELENGTH_HI`` (A), ``COLUMN_LO``, ``COLUMN_HI``, ``RP_RS``,
``RP_RS_ERR_LO``, ``RP_RS_ERR_HI`` (from the posterior's 16th and 84th
percentiles), ``DEPTH``, ``DEPTH_ERR`` (signed ``rp |rp|`` and half its 16-84 %
range), ``CHI2``, ``BIC`` (summed over the visits), ``N_VISITS``,
``AUTOCORR`` (largest integrated autocorrelation time, steps; NaN for least
squares) and ``CONVERGED`` (the chain is at least 50 of them long).

``transit_fit.fits``: ``VISITS``, one row per channel and visit: ``CHANNEL``,
``VISIT``, ``T0``, ``T0_ERR`` (MJD), ``CHI2``, ``DOF``, ``BIC``, ``BETA``
(red-noise factor), ``ERROR_SCALE`` (factor on the flux errors),
``TIMESCALE`` (exponential ramp, min), ``N_USED``, ``COEF_NAMES``
(comma-separated), ``COEF`` and ``COEF_ERR`` (padded with NaN); and for each
visit ``DETRENDED_<visit>``, one row per frame: ``TIME`` and, per channel
(white first, along the second axis), ``USED``, ``FLUX`` (as fitted),
``SYSTEMATICS`` (the fitted systematics model), ``TRANSIT`` (the fitted
transit), ``DETRENDED`` = flux / systematics, ``DETRENDED_ERR`` (inflated),
``RESIDUAL`` = detrended - transit.

``transit_samples.fits``: ``WHITE``, the white fit's posterior samples (one
column per parameter: ``rp_rs``, ``t0_<visit>``, ``a_rs``, ``inclination`` as
free), and ``RP_RS``, an image of every channel's Rp/R* samples (row 0 white,
then the channels; evenly thinned to at most :data:`MAX_SAMPLES`, NaN padded).
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .fitsio import read_table

__all__ = ["MAX_SAMPLES", "depths_hdu", "read_depths", "transit_fit_hdus", "read_transit_fit",
           "samples_hdus", "read_samples"]

#: Most Rp/R* samples kept per channel in ``transit_samples.fits``.
MAX_SAMPLES = 4000


def depths_hdu(depths: Table, transit_model: str):
    """The ``DEPTHS`` extension of ``transit_depths.fits``."""
    hdu = fits.table_to_hdu(depths)
    hdu.name = "DEPTHS"
    hdu.header["TMODEL"] = (transit_model, "transit model of the fit")
    return hdu


def read_depths(path) -> Table:
    """``DEPTHS`` of a ``transit_depths.fits`` (one row per channel, ``white`` first)."""
    return read_table(path, "DEPTHS")


def transit_fit_hdus(visits: Table, detrended: dict):
    """The extensions of ``transit_fit.fits``: ``VISITS`` and ``DETRENDED_<visit>`` for each
    visit name in ``detrended`` (name -> Table)."""
    hdus = [fits.table_to_hdu(visits)]
    hdus[0].name = "VISITS"
    for name, table in detrended.items():
        hdu = fits.table_to_hdu(table)
        hdu.name = f"DETRENDED_{name}"
        hdus.append(hdu)
    return hdus


def read_transit_fit(path):
    """``VISITS`` (Table) and each visit's detrended light curves (visit -> Table) of a
    ``transit_fit.fits``."""
    visits = read_table(path, "VISITS")
    with fits.open(path) as hdul:
        names = [h.name[len("DETRENDED_"):] for h in hdul if h.name.startswith("DETRENDED_")]
    order = [str(v).strip() for v in dict.fromkeys(visits["VISIT"])]
    lookup = {n.upper(): n for n in order}
    return visits, {lookup.get(n, n): read_table(path, f"DETRENDED_{n}") for n in names}


def samples_hdus(white: Table, rp_rs: np.ndarray, header=None):
    """The extensions of ``transit_samples.fits``: ``WHITE`` and ``RP_RS``."""
    w = fits.table_to_hdu(white)
    w.name = "WHITE"
    r = fits.ImageHDU(np.asarray(rp_rs, np.float32), name="RP_RS")
    r.header["COMMENT"] = "Rp/R* samples: row 0 white, then the channels (NaN padded)"
    if header is not None:
        w.header.extend(header.cards)
    return [w, r]


def read_samples(path):
    """The white fit's samples (Table) and every channel's Rp/R* samples (ndarray, row 0
    white) of a ``transit_samples.fits``."""
    with fits.open(path) as hdul:
        rp = np.asarray(hdul["RP_RS"].data, float)
    return read_table(path, "WHITE"), rp
