"""Writing a simulated data set: the output folder, FITS files, frame headers and config.yaml."""

from __future__ import annotations

from pathlib import Path

from astropy.io import fits

from ..io.atomic import atomic_path
from ..runtime.settings import render_config
from .parameters import MJD_START, SimulationParameters

__all__ = ["prepare_out_dir", "image_hdu", "write_fits", "frame_header", "config_text"]

_OWN_PATTERNS = ("darks/dark_*.fits", "science/science_*.fits", "truth/*.fits",
                 "spectral_mask.fits", "config.yaml", "**/.*.part")
#: A visit's files (``simulate(..., visits=N)``) match the same patterns under ``visit<k>/``.
_OWN_PATTERNS += tuple(f"visit*/{pattern}" for pattern in _OWN_PATTERNS[:-1])


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Create ``out``; refuse a non-empty one unless overwriting (then drop our old files)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out}: folder exists and is not empty; pass --overwrite "
                "(overwrite=True from Python) to replace the simulator's files in it")
        for pattern in _OWN_PATTERNS:
            for path in out.glob(pattern):
                if path.is_file():
                    path.unlink()
        # Visit folders left empty by that (a run with fewer visits) go too.
        for folder in [*out.glob("visit*/*/"), *out.glob("visit*/")]:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    out.mkdir(parents=True, exist_ok=True)


def image_hdu(data, extname, bunit, comment) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data, name=extname)
    if bunit:
        hdu.header["BUNIT"] = (bunit, comment)
    else:
        hdu.header["COMMENT"] = comment
    return hdu


def write_fits(path: Path, hdus) -> None:
    """Write an HDU list to a temporary file in the same folder, then rename it."""
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True, output_verify="exception")


def frame_header(p: SimulationParameters, kind, number, temp, tmid, meta, mjd_start=MJD_START,
                 jitter=None) -> fits.Header:
    """Primary header of a dark or science frame.

    Parameters
    ----------
    p : SimulationParameters
    kind : str
        ``dark`` or ``science``.
    number : int
        Frame number within its kind.
    temp : float
        CCD temperature, degC (``CCDTEMP``).
    tmid : float
        Mid-exposure time, s after the first science exposure's start
        (science frames: ``MJD-OBS``, the exposure start, MJD).
    meta : dict
        Cards of every file (seed, preset).
    mjd_start : float
        MJD of the visit's first science exposure's start.
    jitter : float or None
        Pointing jitter during the exposure, arcsec rms (``JITTER``); None =
        no card.
    """
    header = fits.Header()
    header["IMAGETYP"] = (kind.upper(), "frame type")
    header["EXPTIME"] = (p.exptime, "[s] exposure time")
    header["CCDTEMP"] = (float(temp), "[degC] CCD temperature")
    header["BUNIT"] = ("adu", "pixel unit")
    header["GAIN"] = (p.gain, "[e-/adu] conversion gain")
    header["RDNOISE"] = (p.read_noise, "[e-] read noise")
    header["FRAMENUM"] = (number, "frame number within its type")
    if kind == "science":
        header["MJD-OBS"] = (mjd_start + (tmid - 0.5 * p.exptime) / 86400.0,
                             "[d] exposure start, MJD")
    if jitter is not None:
        header["JITTER"] = (float(jitter), "[arcsec] pointing jitter rms in the exposure")
    header.update(meta)
    return header


def config_text(p: SimulationParameters, preset_name: str, seed: int, changed,
                transit=None) -> str:
    """The data set's pipeline ``config.yaml``, rendered by :func:`~..runtime.settings.render_config`.

    Parameters
    ----------
    p : SimulationParameters
    preset_name : str
        Preset (or ``custom``), recorded in a comment with the seed.
    seed : int
    changed : list of str
        ``key=value`` texts of the overrides, one comment line each.
    transit : dict or None
        Stage 6's transit keys (``transit_model``, ``transit_mid``, ...)
        replacing the box window of the middle third of the frames.
    """
    values = {"dark_frames": "darks/dark_*.fits", "science_frames": "science/science_*.fits",
              "spectral_mask": "spectral_mask.fits", "output_dir": "output",
              "proxy_method": "median", "gain": p.gain, "read_noise": p.read_noise}
    if p.missing_value is not None:
        values["missing_value"] = int(p.missing_value)
    values.update(_spectra_config(p))
    if not (p.orbit_visible_fraction or p.jitter_median or p.pointing_offset_sigma
            or p.pointing_drift or p.ramp_amplitude or p.drift_amplitude):
        # A detector without orbit windows, pointing or throughput changes (tiny, demo,
        # cute): stage 7's systematics are a level and a slope in time.
        values.update(systematics_ramp="none", systematics_first_orbit="keep",
                      systematics_visit_order=1, systematics_offset_order=0,
                      systematics_width_order=0)
    if transit is not None:
        for key in ("transit_model", "transit_mid", "transit_duration"):
            values.pop(key, None)
        values.update(transit)
    comments = ["Pipeline configuration written by proxy_pixel_pipeline.simulate",
                f"(preset {preset_name}, seed {seed}). Paths are relative to this file's folder.",
                *(f"simulation override: {text}" for text in changed)]
    return render_config(values, comments)


def _spectra_config(p: SimulationParameters) -> dict:
    """Stage 6's keys for the simulated data: its wavelength solution and transit window.

    Frames ``round(n/3)`` to ``round(2n/3) - 1`` are in transit; the window
    ends half a cadence beyond the first and last of them (mid-exposure MJD).
    """
    per_column = (p.wave_max - p.wave_min) / (p.n_columns - 1)
    values = {"wavelength_solution": [p.wave_min, per_column]}
    first, stop = round(p.n_science / 3), round(2 * p.n_science / 3)
    if stop > first and stop - first < p.n_science:
        values["transit_model"] = "box"
        values["transit_mid"] = MJD_START + (0.5 * (first + stop - 1) * p.cadence
                                             + 0.5 * p.exptime) / 86400.0
        values["transit_duration"] = (stop - first) * p.cadence / 86400.0
    return values
