"""The ground truth written next to the frames: ``truth/truth.fits`` and one file per frame.

``truth/truth.fits`` holds the detector maps (``HOT``, ``DARK_LEVEL``,
``DARK_DOUBLING``, ``DEAD``), the per-frame table ``FRAMES``, the true
``SPECTRUM`` and the true cross-dispersion ``PROFILE``;
``truth/<frame name>`` the expected ``BACKGROUND`` and ``SIGNAL`` (science
frames), the cosmic-ray charge ``COSMIC`` and the ``MISSING`` pixels.  The
pipeline never reads them; :mod:`proxy_pixel_pipeline.score` does.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from .writers import image_hdu

__all__ = ["truth_hdus", "frame_truth_hdus"]


def truth_hdus(p, detector, trace, rows, meta) -> list:
    """HDUs of truth/truth.fits: detector maps, per-frame table, spectrum, profile."""
    header = fits.Header()
    header["GAIN"] = (p.gain, "[e-/adu] conversion gain")
    header["RDNOISE"] = (p.read_noise, "[e-] read noise")
    header["BIAS"] = (p.bias, "[adu] bias level")
    header["EXPTIME"] = (p.exptime, "[s] exposure time")
    header["DEPTH"] = (p.transit_depth, "fractional transit depth")
    header["TREF"] = (p.temp_ref, "[degC] temperature at which dark = DARK_LEVEL")
    header["SATURATE"] = (p.saturation, "[adu] largest recorded value")
    header["MASKHALF"] = (trace["half_height"], "[rows] spectral mask half height")
    header["NSPEC"] = (int(trace["mask"].sum()), "number of spectral pixels")
    header["NHOT"] = (int(detector["hot"].sum()), "number of hot pixels")
    header["MISSVAL"] = ("NaN" if p.missing_value is None else int(p.missing_value),
                         "marker of missing pixels in the frames")
    header.update(meta)
    header["COMMENT"] = "dark current [e-/s] = DARK_LEVEL * 2**((CCDTEMP - TREF) / DARK_DOUBLING)"
    names, kinds, temps, exps, transit, scale, tmid, saa, ncr, thru, scatter = zip(*rows)
    frames = fits.BinTableHDU.from_columns([
        fits.Column("NAME", "24A", array=np.array(names)),
        fits.Column("KIND", "7A", array=np.array(kinds)),
        fits.Column("CCDTEMP", "D", unit="degC", array=np.array(temps)),
        fits.Column("EXPTIME", "D", unit="s", array=np.array(exps)),
        fits.Column("TRANSIT", "L", array=np.array(transit)),
        fits.Column("FLUX_SCALE", "D", array=np.array(scale)),
        fits.Column("TIME", "D", unit="s", array=np.array(tmid)),
        fits.Column("SAA", "L", array=np.array(saa)),
        fits.Column("NCOSMIC", "J", array=np.array(ncr, dtype=np.int32)),
        fits.Column("THROUGHPUT", "D", array=np.array(thru)),
        fits.Column("SCATTER", "D", unit="electron", array=np.array(scatter)),
    ], name="FRAMES")
    columns = np.arange(p.n_columns, dtype=np.int32)
    spectrum = fits.BinTableHDU.from_columns([
        fits.Column("COLUMN", "J", array=columns),
        fits.Column("WAVE", "D", unit="Angstrom", array=trace["wave"]),
        fits.Column("FLUX_E", "D", unit="electron", array=trace["flux_e"]),
    ], name="SPECTRUM")
    profile = fits.BinTableHDU.from_columns([
        fits.Column("COLUMN", "J", array=columns),
        fits.Column("CENTER", "D", unit="pix", array=trace["center"]),
        fits.Column("AMP1", "D", unit="adu", array=trace["amp1_e"] / p.gain),
        fits.Column("MU1", "D", unit="pix", array=trace["mu1"]),
        fits.Column("SIG1", "D", unit="pix", array=trace["sig1"]),
        fits.Column("AMP2", "D", unit="adu", array=trace["amp2_e"] / p.gain),
        fits.Column("MU2", "D", unit="pix", array=trace["mu2"]),
        fits.Column("SIG2", "D", unit="pix", array=trace["sig2"]),
    ], name="PROFILE")
    return [fits.PrimaryHDU(header=header),
            image_hdu(detector["hot"].astype(np.uint8), "HOT", "", "1 = hot pixel"),
            image_hdu(np.exp(detector["ln_d0"]).astype(np.float32), "DARK_LEVEL", "electron/s",
                      "dark current at TREF"),
            image_hdu(detector["doubling"].astype(np.float32), "DARK_DOUBLING", "degC",
                      "doubling temperature"),
            frames, spectrum, profile,
            image_hdu((np.zeros(detector["hot"].shape, bool) if detector.get("dead") is None
                       else detector["dead"]).astype(np.uint8), "DEAD", "",
                      "1 = pixel never downlinked (missing in every frame)")]


def frame_truth_hdus(kind, path, temp, transit, scale, scatter, frame, meta) -> list:
    """HDUs of one frame's truth file.

    Parameters
    ----------
    kind : str
        ``dark`` or ``science``.
    path : str
        The frame's path relative to the data folder (header ``FRAME``).
    temp : float
        CCD temperature, degC.
    transit : bool
        Frame in transit.
    scale : float
        Flux scale of the signal ((1 or 1 - depth) x throughput).
    scatter : float
        Scattered light at the frame centre, e-.
    frame : dict
        :func:`~.detector.expose`'s output for the frame.
    meta : dict
        Header cards of every file (seed, preset).
    """
    truth_header = fits.Header()
    truth_header["FRAME"] = (path, "frame described")
    truth_header["CCDTEMP"] = (float(temp), "[degC] CCD temperature")
    truth_header["TRANSIT"] = (transit, "frame is in transit")
    truth_header["FLUXSCAL"] = (scale, "flux scale ((1 or 1-depth) x throughput)")
    truth_header["SCATTER"] = (float(scatter), "[e-] scattered light at the frame centre")
    truth_header["SAA"] = (frame["saa"], "frame taken in the SAA (more cosmic rays)")
    truth_header["NCOSMIC"] = (frame["n_cosmic"], "cosmic-ray hits")
    truth_header.update(meta)
    hdus = [fits.PrimaryHDU(header=truth_header)]
    if kind == "science":
        hdus.append(image_hdu(frame["background_adu"], "BACKGROUND", "adu",
                              "expected bias + dark, no noise"))
        hdus.append(image_hdu(frame["signal_adu"], "SIGNAL", "adu",
                              "expected spectral signal, no noise"))
    hdus.append(image_hdu(frame["cosmic_adu"], "COSMIC", "adu", "charge added by cosmic rays"))
    hdus.append(image_hdu(frame["missing"].astype(np.uint8), "MISSING", "",
                          "1 = pixel lost in downlink"))
    return hdus
