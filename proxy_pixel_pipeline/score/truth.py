"""The simulator's ground truth, as :mod:`proxy_pixel_pipeline.simulate` writes it.

A simulated data set holds, next to its ``config.yaml``, a folder ``truth/``
with

* ``truth.fits``: in the primary header the detector (``GAIN`` e-/ADU,
  ``RDNOISE`` e-, ``BIAS`` ADU), the injected transit depth ``DEPTH`` and the
  simulator's preset and seed (``SIMPRES``, ``SIMSEED``); tables ``FRAMES``
  (one row per science frame: ``NAME``, ``TRANSIT`` flag, ``FLUX_SCALE``),
  ``SPECTRUM`` (``FLUX_E``, the true flux per column in electrons) and
  ``PROFILE`` (the true cross-dispersion profile per ``COLUMN``: ``AMP1``,
  ``MU1``, ``SIG1``, ``AMP2``, ``MU2``, ``SIG2``); with the simulator's
  modelable systematics also ``SYSTEMATICS`` (per science frame: orbit,
  trace offset and smear, slit, ramp, drift, throughput and transit factors)
  and ``TRANSMISSION`` (``RP_RS`` per column), see
  :func:`proxy_pixel_pipeline.simulate.truth.systematics_hdus`;
* one file per science frame, with that frame's name, whose extensions are
  the true expected background ``BACKGROUND`` (bias + dark current, ADU), the
  true expected spectral signal ``SIGNAL`` (ADU, scaled by the frame's
  ``FLUX_SCALE``), the cosmic-ray charge ``COSMIC`` (ADU) and the ``MISSING``
  pixels (nonzero = missing).

Only simulated data can be scored: real frames have no truth, and reading it
then fails with a :class:`~proxy_pixel_pipeline.errors.PipelineError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..errors import PipelineError

__all__ = ["Truth", "TruthFrame", "read_truth", "read_truth_frame"]


@dataclass
class TruthFrame:
    """The truth of one science frame (float64 ADU; ``missing`` bool)."""

    background: np.ndarray
    signal: np.ndarray
    cosmic: np.ndarray
    missing: np.ndarray


@dataclass
class Truth:
    """The truth of a simulated data set (``truth/truth.fits``).

    Attributes
    ----------
    folder : Path
        The truth folder.
    header : astropy.io.fits.Header
        Primary header of ``truth.fits``.
    tables : dict
        ``FRAMES``, ``SPECTRUM`` and ``PROFILE`` (and ``SYSTEMATICS``,
        ``TRANSMISSION`` where written), each a dict of column name to
        ndarray.
    gain, read_noise, bias, depth : float
        ``GAIN`` (e-/ADU), ``RDNOISE`` (e-), ``BIAS`` (ADU) and the injected
        transit depth ``DEPTH``.
    """

    folder: Path
    header: fits.Header
    tables: dict
    gain: float
    read_noise: float
    bias: float
    depth: float

    def frames_of(self, names):
        """In-transit flags and flux scales of the science frames called ``names``.

        Parameters
        ----------
        names : list of str
            Science file names, in the run's order.

        Returns
        -------
        transit : ndarray of bool
        flux_scale : ndarray of float

        Raises
        ------
        PipelineError
            A name has no row in ``FRAMES`` (the truth of other frames).
        """
        frames = self.tables["FRAMES"]
        row_of = {str(n).strip(): i for i, n in enumerate(frames["NAME"])}
        unknown = [n for n in names if n not in row_of]
        if unknown:
            raise PipelineError(f"{self.folder / 'truth.fits'}: FRAMES has no row for "
                                f"{unknown[0]}; is this the truth of these science frames?")
        transit = np.array([bool(frames["TRANSIT"][row_of[n]]) for n in names])
        flux_scale = np.array([float(frames["FLUX_SCALE"][row_of[n]]) for n in names])
        return transit, flux_scale

    def throughput_of(self, names):
        """Each science frame's factor in ``FLUX_SCALE`` other than the transit, in the order
        of ``names``: ``THROUGHPUT`` (1 where the truth has no such column) times the
        ``SLIT_FACTOR`` of the ``SYSTEMATICS`` table where there is one."""
        frames = self.tables["FRAMES"]
        if "THROUGHPUT" not in frames:
            return np.ones(len(names))
        row_of = {str(n).strip(): i for i, n in enumerate(frames["NAME"])}
        out = np.array([float(frames["THROUGHPUT"][row_of[n]]) for n in names])
        return out * self._systematic_of(names, "SLIT_FACTOR", 1.0)

    def box_depth_of(self, names):
        """The depth ``1 - mean(in) / mean(out)`` of the noiseless white transit over the
        science frames ``names`` (their TRANSIT flags); ``DEPTH`` without a ``SYSTEMATICS``
        table (a box transit), else what its limb-darkened ``TRANSIT_FLUX`` gives."""
        flux = self._systematic_of(names, "TRANSIT_FLUX", None)
        transit, _ = self.frames_of(names)
        if flux is None or transit.all() or not transit.any():
            return self.depth
        return float(1.0 - flux[transit].mean() / flux[~transit].mean())

    def _systematic_of(self, names, column, default):
        """Column ``column`` of the SYSTEMATICS table for ``names``; ``default`` without one."""
        table = self.tables.get("SYSTEMATICS")
        if table is None:
            return default
        row_of = {str(n).strip(): i for i, n in enumerate(table["NAME"])}
        return np.array([float(table[column][row_of[n]]) for n in names])

    def frame(self, name) -> TruthFrame:
        """The truth of the science frame called ``name`` (see :func:`read_truth_frame`)."""
        return read_truth_frame(self.folder / name)


def read_truth(truth_dir) -> Truth:
    """Read ``truth.fits`` of a truth folder.

    Parameters
    ----------
    truth_dir : str or Path

    Returns
    -------
    Truth

    Raises
    ------
    PipelineError
        No ``truth.fits``, or not one the simulator wrote.
    """
    folder = Path(truth_dir)
    path = folder / "truth.fits"
    try:
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header.copy()
            # Column by column through FITS_rec, which decodes logical and string columns.
            tables = {name: {col: np.array(hdul[name].data[col]) for col in hdul[name].data.names}
                      for name in ("FRAMES", "SPECTRUM", "PROFILE", "SYSTEMATICS", "TRANSMISSION")
                      if name in hdul or name in ("FRAMES", "SPECTRUM", "PROFILE")}
    except FileNotFoundError:
        raise PipelineError(f"{path}: truth not found; score needs a simulated data set "
                            f"(simulate.py writes truth/ next to config.yaml)") from None
    except (KeyError, OSError) as exc:
        raise PipelineError(f"{path}: not a simulator truth file ({exc})") from None
    gain, read_noise, bias = (float(header[k]) for k in ("GAIN", "RDNOISE", "BIAS"))
    return Truth(folder, header, tables, gain, read_noise, bias, float(header["DEPTH"]))


def read_truth_frame(path) -> TruthFrame:
    """BACKGROUND, SIGNAL, COSMIC (float64 ADU) and MISSING (bool) of one science frame.

    Parameters
    ----------
    path : str or Path
        The frame's truth file.

    Returns
    -------
    TruthFrame

    Raises
    ------
    PipelineError
        File missing or without those extensions.
    """
    try:
        with fits.open(path, memmap=False) as hdul:
            images = {name.lower(): np.asarray(hdul[name].data, np.float64)
                      for name in ("BACKGROUND", "SIGNAL", "COSMIC")}
            missing = np.asarray(hdul["MISSING"].data) != 0
    except FileNotFoundError:
        raise PipelineError(f"{path}: truth file not found") from None
    except (KeyError, OSError) as exc:
        raise PipelineError(f"{path}: not a simulator truth frame ({exc})") from None
    return TruthFrame(missing=missing, **images)
