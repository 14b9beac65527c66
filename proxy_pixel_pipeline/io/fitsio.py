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

import functools
import hashlib
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from astropy.io import fits

from .. import __version__
from ..runtime import registry
from .atomic import atomic_path
from ..runtime.config import PATH_KEYS
from ..errors import PipelineError

__all__ = ["read_image", "read_stack", "check_frames", "read_mask", "write_fits", "read_table", "observation_header", "run_id",
           "parent_runs", "RUN_ID"]

# Identifies this process's run of a stage in every file it writes (rank 0 writes).
RUN_ID = uuid.uuid4().hex[:16]

def read_image(path, missing_value=None, dtype=np.float32) -> np.ndarray:
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
    elif data.dtype.kind in "iu" and path.parent not in _WARNED_NEGATIVE and (data < 0).any():
        # Raw CCD counts sit above a positive bias: negatives in integer frames are
        # almost surely a missing-pixel sentinel the config does not name.
        _WARNED_NEGATIVE.add(path.parent)
        from ..runtime.logs import get_logger

        get_logger().warning("%s: integer frame with %d negative values (e.g. %d) but no "
                             "missing_value in the config; if they mark lost pixels, set "
                             "missing_value", path, int((data < 0).sum()), int(data.min()))
    return image


_WARNED_NEGATIVE: set = set()     # folders already warned about (one warning per folder)


def read_stack(paths, missing_value=None, shape=None, dtype=np.float32) -> np.ndarray:
    """Read frames into one (n_frames, rows, columns) array, checking shapes agree."""
    paths = list(paths)
    stack = None
    for i, path in enumerate(paths):
        image = read_image(path, missing_value, dtype)
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


def read_mask(path, shape=None) -> np.ndarray:
    """Read the spectral mask as a bool array: a 2D FITS image (nonzero = spectral
    pixel) or a CSV of the original code's tags (see :mod:`.pixel_lists`)."""
    from .pixel_lists import read_pixels

    mask = read_pixels(path, shape)
    if not mask.any():
        raise PipelineError(f"{path}: mask has no spectral (nonzero) pixel")
    if mask.all():
        raise PipelineError(f"{path}: mask has no non-spectral (zero) pixel to use as proxy")
    return mask


def observation_header(path, config=None):
    """The observation keywords of a science frame that its products carry along.

    Parameters
    ----------
    path : Path
        The science frame.
    config : Config, optional
        Its header keys of temperature, time and exposure (``ccdtemp_key``,
        ``time_key``, ``exptime_key``: CUTE's frames carry ``JD``) are kept too.
    """
    keep = ["DATE-OBS", "EXPTIME", "CCDTEMP", "OBJECT", "IMAGETYP", "MJD-OBS"]
    if config is not None:
        keep += [k for k in (config.ccdtemp_key, config.time_key, config.exptime_key)
                 if k not in keep]
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


def write_fits(path, data=None, *, stage, config, inputs=(), raw_inputs=(), header=None,
               extensions=(), bunit=None, overwrite=True) -> Path:
    """Write a FITS file atomically with provenance in the primary header.

    Parameters
    ----------
    path : str or Path
        Destination; its folder is created if needed.
    data : ndarray, optional
        Primary HDU image (None for a table-only file).
    stage : int
        Pipeline stage (:mod:`.registry`) that made the file.
    config : Config
        Its settings are recorded (``HIERARCH PPP <KEY>``) with the digest
        ``CFGHASH`` of those behind ``stage``'s outputs.
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
    _stamp(hdr, stage, config, inputs, raw_inputs)
    if bunit:
        hdr["BUNIT"] = bunit
    hdul = fits.HDUList([fits.PrimaryHDU(data, header=hdr), *extensions])
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True, checksum=True)
    return path


def _stamp(hdr, stage, config, inputs, raw_inputs=()):
    """Add the provenance cards; the only place that writes them."""
    hdr["PIPELINE"] = ("Proxy Pixel Pipeline", "software that made this file")
    hdr["PIPEVER"] = (__version__, "pipeline version")
    title = registry.stage(stage).title
    hdr["STAGE"] = (stage, title)
    hdr["DATE"] = (datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "UTC file creation")
    hdr["CFGHASH"] = (config.digest(stage), "digest of the settings behind this file")
    hdr["CFGFILE"] = (Path(config.source).name, "config file")
    for key, value in config.values().items():
        if key in PATH_KEYS and value is not None:
            value = Path(value).name
        if isinstance(value, tuple):        # a list of numbers (e.g. wavelength_solution)
            value = "[" + ", ".join(map(repr, value)) + "]"
        hdr[f"HIERARCH PPP {key.upper()}"] = "null" if value is None else value
    hdr["RUNID"] = (RUN_ID, "this run of the stage")
    for i, name in enumerate(inputs):
        hdr[f"INPUT{i + 1}" if len(inputs) > 1 else "INPUT"] = Path(name).name
    # Lineage: the runs that made the pipeline products among the inputs, and
    # the bytes of the raw inputs a later stage will check.
    parents = sorted({run for run in map(run_id, inputs) if run})
    for i, run in enumerate(parents):
        hdr[f"PARENT{i + 1}"] = (run, "RUNID of an input made by an earlier stage")
    if raw_inputs:
        hdr["INPUTSUM"] = (inputs_digest(raw_inputs), "digest of the raw input files' bytes")
    hdr.add_history(f"Proxy Pixel Pipeline {__version__} stage {stage}: {title}")


def run_id(path):
    """RUNID of the stage run that wrote ``path`` (None for files this pipeline did not
    write, even if an instrument put a RUNID keyword in them)."""
    try:
        header = fits.getheader(path)
    except Exception:  # not FITS, unreadable: not a pipeline product
        return None
    return header.get("RUNID") if header.get("PIPELINE") == "Proxy Pixel Pipeline" else None


def inputs_digest(paths) -> str:
    """Short digest of the names and bytes of files (raw inputs, in order).

    Lets a later stage tell that a dark frame or mask was replaced after a
    product was made from it, whatever the files' dates.
    """
    return _digest(tuple((str(Path(p)), *_stat(p)) for p in paths))


def _stat(path):
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _digest(files) -> str:
    # Keyed on (path, size, mtime): a stage that stamps several outputs with
    # the same inputs reads them once.
    h = hashlib.sha256()
    for path, *_ in files:
        h.update(Path(path).name.encode() + b"\0")
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def parent_runs(path) -> set:
    """RUNIDs of the stage runs whose outputs ``path`` was made from."""
    header = fits.getheader(path)
    return {value for key, value in header.items() if key.startswith("PARENT")}


def _one_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
