"""Pixel lists: a FITS mask or a CSV of the original code's pixel tags.

The original CUTE pipeline keeps its spectral, candidate and excluded pixels
as CSV files, one *tag* a line, ``tag = n_columns x row + column`` (row-major;
2048 x row + column on CUTE's 2048-column frames: the multiplier is always the
frame's column count).  This pipeline accepts such a list wherever it takes a
mask (``spectral_mask``, ``candidate_pixels``, ``exclude_pixels``), or a 2D
FITS image (nonzero = in the list).  Every reader of these keys goes through
:func:`read_pixels` (the spectral mask through
:func:`read_mask`), so a CSV and the equivalent FITS mask give the
same products.

A CSV line is a non-negative integer tag (``12345``, ``12345.0`` or
``12345,``); blank lines and ``#`` comments are skipped, and the first line
may be a column name (``tag``).  A tag outside the frame or any other line is
a one-line :class:`~.errors.PipelineError` naming the file and the line.

A CSV holds no frame shape: the caller passes it (the config's
``pixel_list`` passes the dark frames' shape, :func:`frame_shape_of`).
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from .fitsio import read_image

__all__ = ["is_tag_list", "frame_shape_of", "read_pixels", "read_mask", "read_tags", "tags_of",
           "write_tags"]

_TAG_SUFFIXES = (".csv", ".txt")

def is_tag_list(path) -> bool:
    """True when ``path`` names a CSV (or .txt) list of tags rather than a FITS mask."""
    return Path(path).suffix.lower() in _TAG_SUFFIXES


def frame_shape_of(frames_glob):
    """(rows, columns) of the first frame matching ``frames_glob``, from its header only.

    A CSV of tags refers to frames of this shape (:func:`read_pixels`).
    """
    files = sorted(glob.glob(str(frames_glob)))
    if not files:
        raise PipelineError(f"no frame matches {frames_glob} to give the frame shape")
    from astropy.io import fits

    try:
        with fits.open(files[0], lazy_load_hdus=True) as hdul:
            header = next((h.header for h in hdul if h.is_image and h.header.get("NAXIS", 0) == 2),
                          None)
    except Exception as exc:
        raise PipelineError(f"{files[0]}: cannot read FITS ({exc})") from None
    if header is None:
        raise PipelineError(f"{files[0]}: no 2D image to give the frame shape")
    return int(header["NAXIS2"]), int(header["NAXIS1"])


def read_tags(path) -> np.ndarray:
    """The tags of a CSV list, in file order (int64), checked line by line for form only."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: cannot read ({exc})") from None
    tags = []
    first = True
    for number, line in enumerate(text.splitlines(), 1):
        field = line.split("#", 1)[0].strip()
        if not field:
            continue
        if field.endswith(","):
            field = field[:-1].strip()
        is_header, first = first and field.isidentifier(), False
        if is_header:
            continue
        try:
            value = float(field)
        except ValueError:
            value = None
        if value is None or not value.is_integer() or value < 0 or "," in field:
            raise PipelineError(f"{path}: line {number}: {line.strip()[:40]!r} is not a pixel tag "
                                f"(one non-negative integer a line)")
        tags.append(int(value))
    return np.asarray(tags, np.int64)


def tags_of(mask) -> np.ndarray:
    """Tags (``n_columns x row + column``, ascending) of the True pixels of a 2D mask."""
    return np.flatnonzero(np.asarray(mask).ravel()).astype(np.int64)


def write_tags(path, mask, header="tag"):
    """Write the tags of a mask's True pixels as a CSV, one a line (as the original's lists)."""
    lines = ([header] if header else []) + [str(t) for t in tags_of(mask)]
    Path(path).write_text("\n".join(lines) + "\n")


def read_pixels(path, shape=None) -> np.ndarray:
    """A pixel list as a bool image: a CSV of tags or a 2D FITS image (nonzero = listed).

    Parameters
    ----------
    path : str or Path
    shape : (int, int), optional
        Frame shape.  A FITS mask is checked against it; a CSV needs it to
        decode its tags (:func:`frame_shape_of` gives it from the frames;
        ``Config.pixel_list`` passes the darks' shape).

    Raises
    ------
    PipelineError
        Unreadable file, a malformed line or a tag outside the frame (naming
        the line), a FITS image of another shape.
    """
    path = Path(path)
    if not is_tag_list(path):
        image = read_image(path, dtype=np.float64)
        if shape is not None and image.shape != tuple(shape):
            raise PipelineError(f"{path}: mask shape {image.shape} differs from frame shape "
                                f"{tuple(shape)}")
        return np.nan_to_num(image) != 0
    if shape is None:
        raise PipelineError(f"{path}: a CSV list of pixel tags needs the frame shape; read it "
                            f"through the pipeline config (its dark frames give the shape)")
    shape = tuple(int(n) for n in shape)
    tags = read_tags(path)
    size = shape[0] * shape[1]
    bad = np.flatnonzero(tags >= size)
    if len(bad):
        line = _line_of(path, bad[0])
        raise PipelineError(f"{path}: line {line}: tag {tags[bad[0]]} lies outside the "
                            f"{shape[0]} x {shape[1]} frame (tag = {shape[1]} x row + column "
                            f"< {size})")
    mask = np.zeros(size, bool)
    mask[tags] = True
    return mask.reshape(shape)


def _line_of(path, index) -> int:
    """Line number of the ``index``-th tag of a CSV (for error messages)."""
    seen = -1
    first = True
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        field = line.split("#", 1)[0].strip().rstrip(",").strip()
        if not field:
            continue
        is_header, first = first and field.isidentifier(), False
        if not is_header:
            seen += 1
            if seen == index:
                return number
    return number


def read_mask(path, shape=None) -> np.ndarray:
    """Read the spectral mask as a bool array: a 2D FITS image (nonzero = spectral
    pixel) or a CSV of the original code's tags (see above)."""
    mask = read_pixels(path, shape)
    if not mask.any():
        raise PipelineError(f"{path}: mask has no spectral (nonzero) pixel")
    if mask.all():
        raise PipelineError(f"{path}: mask has no non-spectral (zero) pixel to use as proxy")
    return mask
