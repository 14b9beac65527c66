"""Pipeline configuration: one YAML file shared by the five stages.

Five keys are required (other tools write configs with these names)::

    dark_frames:    glob of dark FITS files
    science_frames: glob of science FITS files
    spectral_mask:  FITS file, 2D, nonzero = spectral pixel
    output_dir:     folder for all outputs
    proxy_method:   median | lsq

Everything else has a documented default (see ``config.yaml`` at the top of
the repository, which lists every key).  Unknown keys, wrong types and values
out of range raise :class:`~proxy_pixel_pipeline.errors.PipelineError` naming
the key.  Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import PipelineError

__all__ = ["Config", "load_config", "STAGE_KEYS", "PATH_KEYS"]

_REQUIRED = ("dark_frames", "science_frames", "spectral_mask", "output_dir", "proxy_method")


@dataclass(frozen=True)
class Config:
    """Validated pipeline settings; see ``config.yaml`` for what each key does."""

    dark_frames: str
    science_frames: str
    spectral_mask: str
    output_dir: str
    proxy_method: str = "median"
    # --- stage 1: proxy matching
    median_mode: str = "exact"
    median_candidates: int = 10
    prefilter_count: int = 64
    proxy_count: int = 1
    hot_pixel_sigma: float = 15.0
    min_valid_samples: int = 10
    missing_value: float | None = None
    block_size: int = 512
    candidate_chunk: int = 4096
    blas_threads: int = 0
    # --- stage 2: frames
    proxy_combine: str = "median"
    proxy_offset: bool = False
    # --- stages 3-4: profile fits
    bin_width: int = 25
    # --- stage 5: infill and cosmic rays
    fill_negative: bool = True
    negative_sigma: float = 3.0
    gain: float = 1.5
    read_noise: float = 3.5
    lacosmic_contrast: float = 2.0
    lacosmic_cr_threshold: float = 5.0
    lacosmic_neighbor_threshold: float = 2.0
    lacosmic_maxiter: int = 4
    # --- where the file came from (not YAML keys)
    source: str = field(default="", compare=False)
    as_written: dict = field(default_factory=dict, compare=False)

    # ------------------------------------------------------------------ paths
    @property
    def output_path(self) -> Path:
        """Absolute output folder."""
        return Path(self.output_dir)

    def dark_paths(self) -> list[Path]:
        """Sorted dark frame files; error naming the key if the glob is empty."""
        return _expand("dark_frames", self.dark_frames)

    def science_paths(self) -> list[Path]:
        """Sorted science frame files; error naming the key if the glob is empty."""
        return _expand("science_frames", self.science_frames)

    # ------------------------------------------------------------ provenance
    def values(self, keys=None) -> dict:
        """The YAML-level settings (all, or only ``keys``) as a plain dict."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name not in ("source", "as_written")}
        return out if keys is None else {k: out[k] for k in keys}

    def digest(self, stage: int) -> str:
        """Short hash of the settings that determine the outputs up to ``stage``.

        Written into every output header so that a later stage can tell whether
        its inputs were made with the same relevant configuration.
        """
        keys = sorted({k for s in range(1, stage + 1) for k in STAGE_KEYS[s]})
        # Paths as written in the file (relative to it): moving a run's folder
        # keeps its outputs valid.
        values = {**self.values(keys), **{k: v for k, v in self.as_written.items() if k in keys}}
        text = json.dumps(values, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# Settings that change each stage's output (used for the provenance digest).
STAGE_KEYS = {
    1: ("dark_frames", "spectral_mask", "proxy_method", "median_mode", "median_candidates",
        "prefilter_count", "proxy_count", "hot_pixel_sigma", "min_valid_samples", "missing_value"),
    2: ("science_frames", "proxy_combine", "proxy_offset", "gain", "read_noise"),   # BKG_ERR floor
    3: ("bin_width",),
    4: (),
    5: ("fill_negative", "negative_sigma", "lacosmic_contrast", "lacosmic_cr_threshold",
        "lacosmic_neighbor_threshold", "lacosmic_maxiter"),
}

_CHOICES = {
    "proxy_method": ("median", "lsq"),
    "median_mode": ("fast", "exact"),
    "proxy_combine": ("median", "clipped_mean"),
}
# (minimum, maximum) inclusive; None = unbounded
_RANGES = {
    "median_candidates": (1, None),
    "prefilter_count": (1, None),
    "proxy_count": (1, None),
    "hot_pixel_sigma": (0.5, None),
    "min_valid_samples": (2, None),
    "block_size": (1, None),
    "candidate_chunk": (64, None),
    "blas_threads": (0, None),
    "bin_width": (1, None),
    "negative_sigma": (0.0, None),
    "gain": (1e-6, None),
    "read_noise": (0.0, None),
    "lacosmic_contrast": (0.0, None),
    "lacosmic_cr_threshold": (0.0, None),
    "lacosmic_neighbor_threshold": (0.0, None),
    "lacosmic_maxiter": (1, None),
}
#: Keys holding paths (relative to the config file; recorded by name in headers).
PATH_KEYS = ("dark_frames", "science_frames", "spectral_mask", "output_dir")


def load_config(path, **overrides) -> Config:
    """Read, validate and resolve a pipeline config file.

    Parameters
    ----------
    path : str or Path
        The YAML file.  Relative paths inside it are taken relative to its folder.
    **overrides
        Settings that replace the file's (used by tests and benchmarks).

    Returns
    -------
    Config

    Raises
    ------
    PipelineError
        Missing or unreadable file, invalid YAML, unknown key, missing
        required key, wrong type or value out of range; the message names
        the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PipelineError(f"{path}: not valid YAML ({first})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PipelineError(f"{path}: expected a mapping of key: value, got {type(raw).__name__}")
    raw = {**raw, **overrides}
    return config_from_dict(raw, base=path.parent.resolve(), source=str(path))


def config_from_dict(raw: dict, base=".", source="<dict>") -> Config:
    """Validate a mapping of settings; see :func:`load_config`."""
    fields = {f.name: f for f in dataclasses.fields(Config) if f.name not in ("source", "as_written")}
    for key in raw:
        if key not in fields:
            raise PipelineError(f"{source}: unknown key '{key}'")
    for key in _REQUIRED:
        if key not in raw or raw[key] is None:
            raise PipelineError(f"{source}: missing required key '{key}'")
    values = {}
    for key, value in raw.items():
        values[key] = _check(source, key, value, fields[key])
    base = Path(base)
    written = {key: values[key] for key in PATH_KEYS}
    for key in PATH_KEYS:
        values[key] = os.path.normpath(base / Path(values[key]).expanduser())
    _check_paths(source, values)
    return Config(**values, source=source, as_written=written)


def _check_paths(source, values):
    """Outputs must never land on or among the inputs, nor inputs among outputs."""
    out = Path(values["output_dir"])
    if out.exists() and not out.is_dir():
        raise PipelineError(f"{source}: key 'output_dir' is an existing file: {out}")
    for key in ("dark_frames", "science_frames"):
        if Path(values[key]).is_dir():
            raise PipelineError(f"{source}: key '{key}' is a folder ({values[key]}); give a glob "
                                f"of its files, e.g. {Path(values[key]) / '*.fits'}")
        folder = _fixed_prefix(values[key])
        if out == folder or folder in out.parents:
            raise PipelineError(f"{source}: key 'output_dir' ({out}) is inside the '{key}' "
                                f"folder {folder}; outputs must not mix with inputs")
    for key in ("dark_frames", "science_frames", "spectral_mask"):
        path = _fixed_prefix(values[key]) if key != "spectral_mask" else Path(values[key])
        if path == out or out in path.parents:
            raise PipelineError(f"{source}: key '{key}' ({values[key]}) lies inside 'output_dir' "
                                f"{out}; a stage could overwrite its own input")


def _fixed_prefix(pattern) -> Path:
    """The folder part of a glob before its first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    path = Path(*fixed) if fixed else Path(".")
    return path if len(fixed) < len(parts) else path.parent


def _check(source, key, value, fld):
    """Type- and range-check one value; return it converted."""
    kind = fld.type
    where = f"{source}: key '{key}'"
    if key == "missing_value":
        if value is None:
            return None
        kind = "float"
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise PipelineError(f"{where} must be a non-empty string, got {value!r}")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise PipelineError(f"{where} must be one of {'|'.join(_CHOICES[key])}, got {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise PipelineError(f"{where} must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise PipelineError(f"{where} must be an integer, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PipelineError(f"{where} must be a finite number, got {value!r}")
        value = float(value)
    lo, hi = _RANGES.get(key, (None, None))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise PipelineError(f"{where} must be {rng}, got {value!r}")
    return value


def _expand(key, pattern) -> list[Path]:
    paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise PipelineError(f"config key '{key}': no file matches {pattern}")
    return paths
