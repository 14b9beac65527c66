"""The ground truth written next to the frames: ``truth/truth.fits`` and one file per frame.

``truth/truth.fits`` holds the detector maps (``HOT``, ``DARK_LEVEL``,
``DARK_DOUBLING``, ``DEAD``), the per-frame table ``FRAMES``, the true
``SPECTRUM`` and the true cross-dispersion ``PROFILE`` (of the visit's trace
position); with the modelable systematics also ``SYSTEMATICS`` and
``TRANSMISSION`` (:func:`systematics_hdus`) and, in the primary header, the
visit's draws and planet (:func:`visit_cards`); ``truth/<frame name>`` the
expected ``BACKGROUND`` and ``SIGNAL`` (science
frames), the cosmic-ray charge ``COSMIC`` and the ``MISSING`` pixels.  The
pipeline never reads them; :mod:`proxy_pixel_pipeline.score` does.
"""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from .writers import image_hdu

__all__ = ["truth_hdus", "frame_truth_hdus", "systematics_hdus", "visit_cards"]


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


def systematics_hdus(p, names, times, sysm, mjd_mid, temps, transit_flux, flux_scale,
                     throughput, wave, radius) -> list:
    """The truth of the modelable systematics: tables SYSTEMATICS and TRANSMISSION.

    ``SYSTEMATICS`` has one row per science frame, in frame order:

    * ``NAME`` (24A): science file name;
    * ``MJD_MID`` (d): mid-exposure time, MJD;
    * ``ORBIT`` (J): orbit window of the visit, 1-based;
    * ``ORBIT_TIME`` (s): mid-exposure time since that window began;
    * ``CCDTEMP`` (degC): CCD temperature, as in the header;
    * ``TRACE_OFFSET`` (pix): rows the trace is moved by from PROFILE;
    * ``SMEAR`` (pix): sigma of the Gaussian the profile is smeared with;
    * ``JITTER`` (arcsec): pointing jitter rms, the header's ``JITTER``;
    * ``SLIT_FACTOR``: light passing the slit edge, ``1 - slit_loss
      (TRACE_OFFSET**2 + SMEAR**2)``;
    * ``RAMP``: the orbit-window ramp factor; ``DRIFT``: the visit's drift;
    * ``THROUGHPUT``: ``RAMP x DRIFT`` (times throughput_sigma's draws, if
      any), as in FRAMES;
    * ``TRANSIT_FLUX``: the transit's factor on the white light
      (flux-weighted over the columns);
    * ``FLUX_SCALE``: ``TRANSIT_FLUX x THROUGHPUT x SLIT_FACTOR``, as in
      FRAMES.

    ``TRANSMISSION`` has one row per column: ``COLUMN``, ``WAVE`` (A),
    ``RP_RS`` (the planet's radius over the star's, per column) and ``DEPTH``
    (``RP_RS**2``).  A column's signal in frame *f* is its PROFILE moved by
    TRACE_OFFSET and smeared by SMEAR, times its transit light curve (batman,
    ``RP_RS``), THROUGHPUT and SLIT_FACTOR.

    Parameters
    ----------
    p : SimulationParameters
    names : list of str
    times : dict
        :func:`~.systematics.science_times`.
    sysm : dict
        :func:`~.systematics.visit_systematics`.
    mjd_mid, temps, transit_flux, flux_scale, throughput : ndarray
        Per science frame.
    wave, radius : ndarray
        Per column: wavelength (A) and Rp/R*.
    """
    col = fits.Column
    table = fits.BinTableHDU.from_columns([
        col("NAME", "24A", array=np.array(names)),
        col("MJD_MID", "D", unit="d", array=np.asarray(mjd_mid, float)),
        col("ORBIT", "J", array=np.asarray(times["orbit"], np.int32)),
        col("ORBIT_TIME", "D", unit="s", array=np.asarray(times["since_window"], float)),
        col("CCDTEMP", "D", unit="degC", array=np.asarray(temps, float)),
        col("TRACE_OFFSET", "D", unit="pix", array=sysm["offset"]),
        col("SMEAR", "D", unit="pix", array=sysm["smear"]),
        col("JITTER", "D", unit="arcsec", array=sysm["jitter"]),
        col("SLIT_FACTOR", "D", array=sysm["slit"]),
        col("RAMP", "D", array=sysm["ramp"]),
        col("DRIFT", "D", array=sysm["drift"]),
        col("THROUGHPUT", "D", array=np.asarray(throughput, float)),
        col("TRANSIT_FLUX", "D", array=np.asarray(transit_flux, float)),
        col("FLUX_SCALE", "D", array=np.asarray(flux_scale, float)),
    ], name="SYSTEMATICS")
    transmission = fits.BinTableHDU.from_columns([
        col("COLUMN", "J", array=np.arange(p.n_columns, dtype=np.int32)),
        col("WAVE", "D", unit="Angstrom", array=np.asarray(wave, float)),
        col("RP_RS", "D", array=np.asarray(radius, float)),
        col("DEPTH", "D", array=np.asarray(radius, float) ** 2),
    ], name="TRANSMISSION")
    return [table, transmission]


def visit_cards(p, visit, sysm, transit_mid) -> dict:
    """Primary-header cards of truth.fits for a data set with systematics."""
    cards = {"VISIT": (visit, "visit number"),
             "RP_RS": (float(np.sqrt(p.transit_depth)), "baseline Rp/R* (DEPTH = RP_RS**2)"),
             "TSHIFT": (sysm["trace_shift"], "[pix] the visit's trace (PROFILE) shift"),
             "RAMPAMP": (sysm["ramp_amplitude"], "orbit-window ramp amplitude of the visit"),
             "RAMPTAU": (p.ramp_tau, "[s] ramp e-folding time"),
             "RAMP1ST": (p.ramp_first_orbit, "first orbit's ramp over the others'"),
             "RAMPSHAP": (p.ramp_shape, "orbit-window ramp: exponential or phase_cubic")}
    for k, c in enumerate(sysm["drift_coefficients"], start=1):
        cards[f"DRIFT{k}"] = (float(c), f"drift coefficient of u**{k}")
    if p.ramp_shape == "phase_cubic":
        for k, b in enumerate(sysm["ramp_cubic"], start=1):
            cards[f"RAMPB{k}"] = (float(b), f"cubic ramp's coefficient of (2x-1)**{k}")
    if transit_mid is not None:
        cards.update({
            "T_MID": (transit_mid, "[d] mid-transit time of the visit, MJD"),
            "PERIOD": (p.planet_period, "[d] planet orbital period"),
            "A_RS": (p.planet_a_rs, "semi-major axis / stellar radius"),
            "INC": (p.planet_inclination, "[deg] orbital inclination"),
            "LIMBDARK": (" ".join(repr(v) for v in p.limb_darkening) or "uniform",
                         "limb-darkening coefficients")})
    return cards
