"""One reader and one writer per product, shared by the stages, figures, score and tests.

The match table (stage 1), profile fits (stages 3-4), the cleaned Final Frame
(stage 5), the spectra and light curves (stage 6); stage 7's in
:mod:`.transit_products`.  Kept apart from
:mod:`..stages` (which imports mpi4py and so starts MPI) so that tools which
only read results never touch MPI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import PipelineError
from ..runtime import registry
from .fitsio import read_image, read_table
from .profile_fits import ProfileFits

__all__ = ["read_matches", "read_spectral_mask", "read_dark_median", "read_profile_fits", "profile_fits_hdu",
           "FinalFrame", "Spectrum", "read_light_curves", "light_curve_hdus"]


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


def read_dark_median(path):
    """Stage 1's dark median (``DARKMED``, ADU) and the pixels a smooth fit may use.

    Returns
    -------
    median : ndarray of float, shape (rows, columns)
        Each pixel's median over the darks, ADU.
    usable : ndarray of bool, shape (rows, columns)
        Non-spectral pixels that are not hot, under-sampled, constant or
        excluded (``SPECMASK`` and ``PIXFLAGS``).
    """
    with fits.open(path) as hdul:
        if "DARKMED" not in hdul:
            raise PipelineError(f"{path}: no DARKMED extension (written since issue 20); rerun "
                                f"{registry.stage_of_output('matches').script}")
        median = hdul["DARKMED"].data.astype(float)
        usable = (hdul["SPECMASK"].data == 0) & (hdul["PIXFLAGS"].data == 0)
    return median, usable


def read_profile_fits(path, extname="FITS") -> ProfileFits:
    """Read the profile fits (one row per column bin) written by stage 3 or 4."""
    return ProfileFits.from_table(read_table(path, extname))


def profile_fits_hdu(profile_fits):
    """The ``FITS`` table extension of stage 3's and stage 4's profile fits (one row per bin)."""
    hdu = fits.table_to_hdu(profile_fits.to_table())
    hdu.name = "FITS"
    return hdu


# ----------------------------------------------------------------- final/ (stage 5)
@dataclass
class FinalFrame:
    """A stage-5 Final Frame (``final/<science file name>``).

    Attributes
    ----------
    data : ndarray of float32
        Cleaned, infilled frame (ADU).
    err : ndarray of float32
        One-sigma error (ADU; NaN off the trace).
    dq : ndarray of uint8
        Data-quality bits (:class:`~..flags.DQFlag`).
    infilled, cosmic : ndarray of bool
        Pixels infilled; pixels replaced as cosmic rays.
    """

    data: np.ndarray
    err: np.ndarray
    dq: np.ndarray
    infilled: np.ndarray
    cosmic: np.ndarray

    EXTENSIONS = ("ERR", "DQ", "INFILLED", "COSMIC")

    @classmethod
    def read(cls, path) -> "FinalFrame":
        """Read one stage-5 file; a missing or misshapen extension is one error naming the
        file and the stage to rerun (the one policy for every reader)."""
        data = read_image(path)
        rerun = registry.stage_of_output("final").script
        with fits.open(path, memmap=False) as hdul:
            missing = [name for name in cls.EXTENSIONS if name not in hdul]
            if missing:
                raise PipelineError(f"{path}: no {'/'.join(missing)} extension (made by an older "
                                    f"stage 5); rerun {rerun}")
            ext = {name: hdul[name].data for name in cls.EXTENSIONS}
        if any(v.shape != data.shape for v in ext.values()):
            raise PipelineError(f"{path}: ERR/DQ shape differs from the image's {data.shape}; "
                                f"rerun {rerun}")
        return cls(data, ext["ERR"].astype(np.float32), ext["DQ"].astype(np.uint8),
                   ext["INFILLED"] != 0, ext["COSMIC"] != 0)

    @classmethod
    def check(cls, path):
        """The extensions are there (headers only): for a stage's up-front checks."""
        with fits.open(path, lazy_load_hdus=True) as hdul:
            missing = [name for name in cls.EXTENSIONS[:2] if name not in {h.name for h in hdul}]
        if missing:
            raise PipelineError(f"{path}: no {'/'.join(missing)} extension (made by an older "
                                f"stage 5); rerun {registry.stage_of_output('final').script}")

    def extensions(self):
        """The HDUs after the primary image (which holds :attr:`data`)."""
        from ..flags import DQFlag, flagdoc

        ext = [fits.ImageHDU(self.err, name="ERR"), fits.ImageHDU(self.dq, name="DQ"),
               fits.ImageHDU(self.infilled.astype(np.uint8), name="INFILLED"),
               fits.ImageHDU(self.cosmic.astype(np.uint8), name="COSMIC")]
        ext[0].header["BUNIT"] = "adu"
        ext[0].header["COMMENT"] = ("one-sigma uncertainty: photon noise of the predicted signal, "
                                    "the pixel's own noise and the background's")
        ext[1].header["FLAGDOC"] = flagdoc(DQFlag)
        ext[2].header["COMMENT"] = "1 = empty or negative pixel infilled from the profile model"
        ext[3].header["COMMENT"] = "1 = cosmic ray found (time series or lacosmic) and replaced"
        return ext


# -------------------------------------------------------------- spectra/ (stage 6)
@dataclass
class Spectrum:
    """One frame's spectrum (``spectra/<science file name>``, extension ``SPECTRUM``).

    One entry per column: ``flux``/``flux_err`` (optimal extraction, ADU per
    exposure), ``box``/``box_err`` (box sum), ``dq``
    (:class:`~..flags.SpectrumFlag`), and the wavelength (A) when the config
    has a ``wavelength_solution`` (None otherwise).  Readable with
    ``specutils.Spectrum.read(path, format="tabular-fits")``.
    """

    flux: np.ndarray
    flux_err: np.ndarray
    box: np.ndarray
    box_err: np.ndarray
    dq: np.ndarray
    wavelength: np.ndarray = None

    _COLUMNS = (("FLUX", "flux"), ("FLUX_ERR", "flux_err"), ("FLUX_BOX", "box"),
                ("FLUX_BOX_ERR", "box_err"))

    def to_hdu(self, header=None):
        """The ``SPECTRUM`` table extension (``header``: cards added to it)."""
        from ..flags import SpectrumFlag, flagdoc

        table = Table()
        table["COLUMN"] = np.arange(len(self.flux), dtype=np.int32)
        if self.wavelength is None:
            table["COLUMN"].unit = "pix"        # specutils' spectral axis without wavelengths
        else:
            table["WAVELENGTH"] = self.wavelength
            table["WAVELENGTH"].unit = "Angstrom"
        for name, attr in self._COLUMNS:
            table[name] = getattr(self, attr)
            table[name].unit = "adu"
        table["DQ"] = self.dq
        hdu = fits.table_to_hdu(table)
        hdu.name = "SPECTRUM"
        if header is not None:
            hdu.header.extend(header.cards)
        hdu.header["FLAGDOC"] = (flagdoc(SpectrumFlag), "DQ bits")
        return hdu

    @classmethod
    def read(cls, path) -> "Spectrum":
        table = read_table(path, "SPECTRUM")
        values = {attr: np.asarray(table[name], float) for name, attr in cls._COLUMNS}
        wave = np.asarray(table["WAVELENGTH"], float) if "WAVELENGTH" in table.colnames else None
        return cls(dq=np.asarray(table["DQ"], int), wavelength=wave, **values)


# ------------------------------------------------------------------ light_curves.fits
def read_light_curves(path):
    """``LIGHTCURVES`` (one row per frame) and ``CHANNELS`` (one row per channel) of a
    ``light_curves.fits``, as astropy Tables."""
    return read_table(path, "LIGHTCURVES"), read_table(path, "CHANNELS")


def light_curve_hdus(light_curves, channels):
    """The ``LIGHTCURVES`` and ``CHANNELS`` extensions of ``light_curves.fits``."""
    lc_hdu = fits.table_to_hdu(light_curves)
    lc_hdu.name = "LIGHTCURVES"
    lc_hdu.header["COMMENT"] = ("fluxes normalised by the out-of-transit median (all frames "
                                "without a model)")
    ch_hdu = fits.table_to_hdu(channels)
    ch_hdu.name = "CHANNELS"
    ch_hdu.header["COMMENT"] = "COLUMN_LO..COLUMN_HI inclusive"
    return [lc_hdu, ch_hdu]
