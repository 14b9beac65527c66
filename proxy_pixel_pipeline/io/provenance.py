"""Provenance: the one place where a product's lineage enters and leaves its header.

In the spirit of ccdproc's ``log_meta``, every file a stage writes carries, in
its primary header, the pipeline version, the stage, the date, the settings
behind it (``HIERARCH PPP <KEY>`` and their digest ``CFGHASH``), the files it
was made from (``INPUTn``), the run that wrote it (``RUNID``) and the runs that
wrote the pipeline products among its inputs (``PARENTn``); a raw input's bytes
are recorded as a digest (``INPUTSUM``).  A later stage reads them back to tell
whether its inputs are current (:mod:`..runtime.lineage`).

The stage run's identity travels in a :class:`Provenance` value made by the
runtime and passed down; nothing here holds state filled at run time.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from astropy.io import fits

from .. import __version__

__all__ = ["Provenance", "new_run_id", "stamp", "run_id", "parent_runs", "inputs_digest",
           "PIPELINE_NAME"]

#: The ``PIPELINE`` card of every product (what marks a file as ours).
PIPELINE_NAME = "Proxy Pixel Pipeline"


def new_run_id() -> str:
    """A fresh identifier of one run of a stage (16 hex digits)."""
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class Provenance:
    """Who writes a product: one run of one stage with one configuration.

    Attributes
    ----------
    stage : int
        Stage number.
    title : str
        The stage's title (comment of the ``STAGE`` card).
    digest : str
        Digest of the settings behind the stage's outputs (``CFGHASH``).
    config_file : str
        Name of the config file.
    settings : dict
        Every setting as recorded (paths by file name, lists as text).
    runid : str
        This run of the stage (``RUNID``); a resumed run keeps its first RUNID.
    """

    stage: int
    title: str
    digest: str
    config_file: str
    settings: dict = field(default_factory=dict)
    runid: str = field(default_factory=new_run_id)


def stamp(hdr, provenance, inputs=(), raw_inputs=()):
    """Add the provenance cards to a primary header (the only place that writes them).

    Parameters
    ----------
    hdr : astropy.io.fits.Header
    provenance : Provenance
    inputs : sequence of path
        Files the product was made from, recorded by name (and by RUNID for
        pipeline products).
    raw_inputs : sequence of path
        Raw files whose bytes a later stage checks (``INPUTSUM``).
    """
    p = provenance
    hdr["PIPELINE"] = (PIPELINE_NAME, "software that made this file")
    hdr["PIPEVER"] = (__version__, "pipeline version")
    hdr["STAGE"] = (p.stage, p.title)
    hdr["DATE"] = (datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "UTC file creation")
    hdr["CFGHASH"] = (p.digest, "digest of the settings behind this file")
    hdr["CFGFILE"] = (p.config_file, "config file")
    for key, value in p.settings.items():
        hdr[f"HIERARCH PPP {key.upper()}"] = value
    hdr["RUNID"] = (p.runid, "this run of the stage")
    inputs = list(inputs)
    for i, name in enumerate(inputs):
        hdr[f"INPUT{i + 1}" if len(inputs) > 1 else "INPUT"] = Path(name).name
    parents = sorted({run for run in map(run_id, inputs) if run})
    for i, run in enumerate(parents):
        hdr[f"PARENT{i + 1}"] = (run, "RUNID of an input made by an earlier stage")
    if raw_inputs:
        hdr["INPUTSUM"] = (inputs_digest(raw_inputs), "digest of the raw input files' bytes")
    hdr.add_history(f"{PIPELINE_NAME} {__version__} stage {p.stage}: {p.title}")


def run_id(path):
    """RUNID of the stage run that wrote ``path`` (None for files this pipeline did not
    write, even if an instrument put a RUNID keyword in them)."""
    try:
        header = fits.getheader(path)
    except Exception:  # not FITS, unreadable: not a pipeline product
        return None
    return header.get("RUNID") if header.get("PIPELINE") == PIPELINE_NAME else None


def parent_runs(path) -> set:
    """RUNIDs of the stage runs whose outputs ``path`` was made from."""
    header = fits.getheader(path)
    return {value for key, value in header.items() if key.startswith("PARENT")}


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
