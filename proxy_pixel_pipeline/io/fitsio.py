"""FITS input and output: careful reading, atomic writing, provenance headers.

Reading turns every problem with a file into a one-line
:class:`~proxy_pixel_pipeline.errors.PipelineError` naming the file.  Writing
goes through :func:`write_fits`, the single place where provenance (pipeline
version, stage, date, input files, configuration and its digest) enters the
headers, in the spirit of ccdproc's ``log_meta``, including the lineage: each
stage run has a ``RUNID`` and records those of the earlier products it read
(``PARENTn``), so a later stage can tell that an input is stale.  Outputs are
written to a temporary name in the target folder and renamed when complete (see
:mod:`.atomic`), so a killed job never leaves a file that looks finished.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..errors import PipelineError
from .atomic import atomic_path
from .provenance import stamp

__all__ = ["read_image", "read_stack", "check_frames", "write_fits", "read_table",
           "observation_header", "header_values"]


def read_image(path, missing_value=None, dtype=np.float32, warn_negative=True) -> np.ndarray:
    """Read the 2D image of a FITS file as floats with NaN for missing pixels.

    The first HDU with data is used (primary, else the first extension).

    Parameters
    ----------
    path : str or Path
        The FITS file.
    missing_value : float, optional
        Sentinel marking missing pixels in the file (e.g. 0 for integer data
        from a lossy downlink).  NaN is always treated as missing.
    dtype : numpy dtype
        Output float type.
    warn_negative : bool
        Warn when an integer frame holds negative values but no
        ``missing_value`` is given (a sentinel the config does not name).

    Returns
    -------
    ndarray, 2D
    """
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = next((h for h in hdul if h.is_image and h.data is not None), None)
            if hdu is None:
                raise PipelineError(f"{path}: no image data in any HDU")
            data = hdu.data
    except PipelineError:
        raise
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except Exception as exc:  # astropy raises many types for corrupt files
        cut = " (file is truncated)" if _is_truncated(path) else ""
        raise PipelineError(f"{path}: cannot read FITS{cut} ({_one_line(exc)})") from None
    if data.ndim == 3:
        raise PipelineError(f"{path}: is a 3D cube {data.shape}; give one 2D frame per file")
    if data.ndim != 2:
        raise PipelineError(f"{path}: image must be 2D, got shape {data.shape}")
    image = data.astype(dtype)
    if missing_value is not None:
        image[data == missing_value] = np.nan
    elif warn_negative and data.dtype.kind in "iu" and (data < 0).any():
        # Raw CCD counts sit above a positive bias: negatives in integer frames are
        # almost surely a missing-pixel sentinel the config does not name.
        logging.getLogger("proxy_pixel_pipeline").warning("%s: integer frame with %d negative values (e.g. %d) but no "
                             "missing_value in the config; if they mark lost pixels, set "
                             "missing_value", path, int((data < 0).sum()), int(data.min()))
    return image


def read_stack(paths, missing_value=None, shape=None, dtype=np.float32) -> np.ndarray:
    """Read frames into one (n_frames, rows, columns) array, checking shapes agree."""
    paths = list(paths)
    stack = None
    warn = True                      # one warning of negative integers for the stack
    for i, path in enumerate(paths):
        image = read_image(path, missing_value, dtype, warn_negative=warn)
        warn = warn and not (image < 0).any()
        if stack is None:
            shape = shape or image.shape
            stack = np.empty((len(paths),) + tuple(shape), dtype)
        if image.shape != stack.shape[1:]:
            raise PipelineError(
                f"{path}: shape {image.shape} differs from {stack.shape[1:]} of {paths[0]}")
        stack[i] = image
    return stack


def check_frames(paths, shape):
    """Check, from their headers and sizes only, that frames can be read and fit ``shape``.

    A stage calls this for every frame it will read before it writes
    anything, so that a bad frame stops the run with its name instead of
    halfway through.

    Parameters
    ----------
    paths : sequence of Path
    shape : (int, int)
        Rows and columns every frame must have (the spectral mask's).

    Raises
    ------
    PipelineError
        The first frame that is unreadable, truncated, not 2D or of another shape.
    """
    for path in map(Path, paths):
        try:
            with warnings.catch_warnings(), fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                warnings.simplefilter("ignore")       # astropy's truncation warning: ours is below
                hdu = next((h for h in hdul if h.is_image and h.header.get("NAXIS", 0) > 0), None)
                if hdu is None:
                    raise PipelineError(f"{path}: no image data in any HDU")
                found = tuple(hdu.header[f"NAXIS{n}"] for n in range(hdu.header["NAXIS"], 0, -1))
                info = hdu.fileinfo()                       # where the data lie (no read)
                end = info["datLoc"] + info["datSpan"]
        except PipelineError:
            raise
        except FileNotFoundError:
            raise PipelineError(f"{path}: file not found") from None
        except Exception as exc:
            raise PipelineError(f"{path}: cannot read FITS ({_one_line(exc)})") from None
        if len(found) != 2:
            raise PipelineError(f"{path}: image must be 2D, got shape {found}")
        if found != tuple(shape):
            raise PipelineError(f"{path}: shape {found} differs from the spectral mask's {tuple(shape)}")
        if path.stat().st_size < end:
            raise PipelineError(f"{path}: file is truncated ({path.stat().st_size} of {end} bytes)")


def observation_header(path, keys=()):
    """The observation keywords of a science frame that its products carry along.

    Parameters
    ----------
    path : Path
        The science frame.
    keys : sequence of str
        More keywords to keep (the config's ``ccdtemp_key``, ``time_key`` and
        ``exptime_key``: CUTE's frames carry ``JD``).
    """
    keep = ["DATE-OBS", "EXPTIME", "CCDTEMP", "OBJECT", "IMAGETYP", "MJD-OBS"]
    keep += [k for k in keys if k not in keep]
    with fits.open(path) as hdul:
        src = _image_header(hdul)
        header = fits.Header()
        for key in keep:
            if key in src:
                header[key] = (src[key], src.comments[key])
    return header


def header_values(paths, key):
    """A numeric keyword of each file's image header (NaN where absent, not a number or
    unreadable: the values only inform warnings)."""
    out = np.full(len(paths), np.nan)
    for i, path in enumerate(paths):
        try:
            with fits.open(path) as hdul:
                value = _image_header(hdul).get(key)
        except Exception:   # an unreadable file fails, with its name, where its data are read
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[i] = value
    return out


def _image_header(hdul):
    """Header of the first HDU with an image (primary, else an extension), without
    reading any data."""
    return next((h.header for h in hdul if h.is_image and h.header.get("NAXIS", 0) > 0),
                hdul[0].header)


def _is_truncated(path) -> bool:
    """Whether astropy, reading ``path`` again, warns that it was cut short."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                for hdu in hdul:
                    hdu.data
        except Exception:
            pass
    return any("truncated" in str(w.message) for w in caught)


def read_table(path, extname):
    """Read a FITS binary table extension as an astropy Table."""
    from astropy.table import Table

    path = Path(path)
    try:
        return Table.read(path, hdu=extname)
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except Exception as exc:
        raise PipelineError(f"{path}: cannot read table '{extname}' ({_one_line(exc)})") from None


def write_fits(path, data=None, *, provenance, inputs=(), raw_inputs=(), header=None,
               extensions=(), bunit=None, overwrite=True) -> Path:
    """Write a FITS file atomically with provenance in the primary header.

    Parameters
    ----------
    path : str or Path
        Destination; its folder is created if needed.
    data : ndarray, optional
        Primary HDU image (None for a table-only file).
    provenance : Provenance
        The stage run writing it (:mod:`.provenance`): stage, settings and
        their digest, RUNID.
    inputs : sequence of path
        Input files, recorded by name (and by RUNID for pipeline products).
    raw_inputs : sequence of path
        Raw input files (frames, mask) whose bytes a later stage checks:
        their digest is recorded as ``INPUTSUM``.
    header : fits.Header, optional
        Extra primary-header cards (copied).
    extensions : sequence of HDU
        Image or table extensions to append.
    bunit : str, optional
        Physical unit of the primary image.
    overwrite : bool
        Replace an existing file; if False an existing file is an error.

    Returns
    -------
    Path
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise PipelineError(f"{path}: exists; pass --overwrite to replace it")
    hdr = fits.Header() if header is None else header.copy()
    stamp(hdr, provenance, inputs, raw_inputs)
    if bunit:
        hdr["BUNIT"] = bunit
    hdul = fits.HDUList([fits.PrimaryHDU(data, header=hdr), *extensions])
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True, checksum=True)
    return path


def _one_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
