"""Pipeline configuration: one YAML file shared by the stages.

The keys are declared in :mod:`.settings` (type, default, range, stages, doc);
five are required (other tools write configs with these names):
``dark_frames``, ``science_frames``, ``spectral_mask``, ``output_dir`` and
``proxy_method``.  ``config.yaml`` at the top of the repository lists every
key with its default.  Unknown keys, wrong types and values
out of range raise :class:`~proxy_pixel_pipeline.errors.PipelineError` naming
the key.  Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
import math
import os
from dataclasses import field
from pathlib import Path

import yaml

from . import registry
from ..errors import PipelineError
from ..io.pixel_lists import frame_shape_of, read_mask, read_pixels
from ..io.provenance import Provenance, new_run_id
from .settings import SETTINGS, by_name, keys_of_stage, path_keys

__all__ = ["Config", "load_config", "config_from_dict", "PATH_KEYS"]

#: Keys holding paths (relative to the config file; recorded by name in headers).
PATH_KEYS = path_keys()

#: Keys naming a pixel list: a FITS mask or a CSV of tags (see :mod:`.pixel_lists`).
PIXEL_LIST_KEYS = ("spectral_mask", "candidate_pixels", "exclude_pixels")


class _ConfigMethods:
    """What a :class:`Config` can do besides holding its settings."""

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

    def frame_shape(self) -> tuple:
        """(rows, columns) of the frames, from the first dark's header (a CSV pixel list's
        tags refer to it)."""
        return frame_shape_of(self.dark_frames)

    def pixel_list(self, key, shape=None):
        """The pixel list of ``key`` (``spectral_mask``, ``candidate_pixels``,
        ``exclude_pixels``) as a bool image of the frame ``shape`` (default: the darks'),
        or None when the key is null."""
        path = getattr(self, key)
        if path is None:
            return None
        shape = self.frame_shape() if shape is None else shape
        return read_mask(path, shape) if key == "spectral_mask" else read_pixels(path, shape)

    # ------------------------------------------------------------ provenance
    def provenance(self, stage: int, runid=None) -> Provenance:
        """What every file a run of ``stage`` writes records about it (:mod:`..io.provenance`):
        the stage, every setting (paths by file name), their digest and the run's RUNID."""
        settings = {key: recorded_value(key, value) for key, value in self.values().items()}
        return Provenance(stage=stage, title=registry.stage(stage).title,
                          digest=self.digest(stage), config_file=Path(self.source).name,
                          settings=settings, runid=runid or new_run_id())

    @functools.cached_property
    def transit(self):
        """The transit model (:class:`~..science.transit_fit.TransitModel`) of
        ``transit_model`` box or batman, made and validated when the config loads; None
        for none."""
        return _transit_model(self.source, self.values())

    def values(self, keys=None) -> dict:
        """The YAML-level settings (all, or only ``keys``) as a plain dict."""
        names = [s.name for s in SETTINGS] if keys is None else keys
        return {k: getattr(self, k) for k in names}

    def digest(self, stage: int) -> str:
        """Short hash of what determines stage ``stage``'s outputs.

        That is the stage's own settings (:func:`~.settings.keys_of_stage`)
        and the digests of the stages whose products it reads
        (:attr:`~.registry.Stage.reads`), so a setting of one stage never
        invalidates a product that did not depend on it.  Written into every
        output header so that a later stage can tell whether its inputs were
        made with the same relevant configuration.
        """
        keys = keys_of_stage(stage)
        # Paths as written in the file (relative to it): moving a run's folder
        # keeps its outputs valid.
        values = {**self.values(keys), **{k: v for k, v in self.as_written.items() if k in keys}}
        values["reads"] = {str(n): self.digest(n) for n in registry.stage(stage).reads}
        text = json.dumps(values, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def depends_on(self, stage: int) -> list:
        """Every key behind ``stage``'s digest, its inputs' included, sorted."""
        return sorted({k for n in registry.upstream(stage) for k in keys_of_stage(n)})


# Required keys first (no default), then the rest, in declaration order.
Config = dataclasses.make_dataclass(
    "Config",
    [(s.name, s.python_type) for s in SETTINGS if s.required]
    + [(s.name, s.python_type, field(default=s.default)) for s in SETTINGS if not s.required]
    + [("source", str, field(default="", compare=False)),
       ("as_written", dict, field(default_factory=dict, compare=False))],
    bases=(_ConfigMethods,), frozen=True)
Config.__module__ = __name__
Config.__doc__ = """Validated pipeline settings, one field per key of :data:`~.settings.SETTINGS`
(``source``: the file they came from; ``as_written``: its path values before resolving)."""


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
    names = {s.name for s in SETTINGS}
    for key in raw:
        if key not in names:
            raise PipelineError(f"{source}: unknown key '{key}'")
    for s in SETTINGS:
        if s.required and raw.get(s.name) is None:
            raise PipelineError(f"{source}: missing required key '{s.name}'")
    values = {}
    for key, value in raw.items():
        values[key] = _check(source, key, value, by_name(key))
    base = Path(base)
    written = {key: values.get(key, by_name(key).default) for key in PATH_KEYS}
    for key in PATH_KEYS:
        if by_name(key).kind == "paths":              # a list of files (joint_visits)
            if values.get(key):
                values[key] = tuple(os.path.normpath(base / Path(v).expanduser())
                                    for v in values[key])
        elif values.get(key) is not None:
            values[key] = os.path.normpath(base / Path(values[key]).expanduser())
    _check_paths(source, values)
    _check_cross(source, values)
    cfg = Config(**values, source=source, as_written=written)
    cfg.transit                            # made and validated now: errors name the key
    return cfg


def recorded_value(key, value):
    """A setting as product headers record it: paths by file name, lists as text, None as
    ``null`` (the one rule for writing and for comparing, :mod:`.lineage`)."""
    if value is None:
        return "null"
    if key in PATH_KEYS:
        value = (tuple(Path(v).name for v in value) if isinstance(value, tuple)
                 else Path(value).name)
    if isinstance(value, tuple):        # a list (wavelength_solution, bands, names)
        return "[" + ", ".join(map(repr, value)) + "]"
    return value


def _check_cross(source, values):
    """Settings that must agree with each other."""
    get = lambda key: values.get(key, by_name(key).default)    # noqa: E731
    if get("emcee_burn") >= get("emcee_steps"):
        raise PipelineError(f"{source}: key 'emcee_burn' ({get('emcee_burn')}) must be below "
                            f"emcee_steps ({get('emcee_steps')})")
    if get("channel_wavelengths") is not None and get("wavelength_solution") is None:
        raise PipelineError(f"{source}: key 'channel_wavelengths' needs a wavelength_solution")
    if get("fit_geometry"):
        for key in ("planet_a_rs_err", "planet_inclination_err"):
            if get(key) is None:
                raise PipelineError(f"{source}: key '{key}' is needed by fit_geometry: true")
    missing = [k for k in get("systematics_extra") if k not in get("header_regressors")]
    if missing:
        raise PipelineError(f"{source}: key 'systematics_extra' names '{missing[0]}', which "
                            f"header_regressors does not copy")


def _transit_model(source, values):
    """The TransitModel of a config (None for transit_model: none); a missing key is one
    error naming it."""
    from ..science.transit_fit.transit import TransitModel

    get = lambda key: values.get(key, by_name(key).default)    # noqa: E731
    kind = get("transit_model")
    if kind == "none":
        return None
    need = {"box": ("transit_mid", "transit_duration"),
            "batman": ("transit_mid", "planet_period", "planet_a_rs", "planet_inclination")}
    for key in need[kind]:
        if get(key) is None:
            raise PipelineError(f"{source}: key '{key}' is needed by transit_model: {kind}")
    ld = tuple(get("limb_darkening") or ())
    if len(ld) not in (0, 1, 2, 4):
        raise PipelineError(f"{source}: key 'limb_darkening' must have 1, 2 or 4 coefficients, "
                            f"got {len(ld)}")
    try:
        if kind == "box":
            return TransitModel(period=get("planet_period") or 1e3, a_rs=get("planet_a_rs") or 10.0,
                                inclination=get("planet_inclination") or 90.0,
                                model="box", duration=get("transit_duration"))
        return TransitModel(period=get("planet_period"), a_rs=get("planet_a_rs"),
                            inclination=get("planet_inclination"), limb_darkening=ld)
    except PipelineError as exc:
        raise PipelineError(f"{source}: {exc}") from None


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


def _check(source, key, value, setting):
    """Type- and range-check one value against its declaration; return it converted."""
    kind = setting.kind
    where = f"{source}: key '{key}'"
    if value is None and setting.nullable:
        return None
    if kind in ("str", "path", "glob"):
        if not isinstance(value, str) or not value:
            raise PipelineError(f"{where} must be a non-empty string, got {value!r}")
        if setting.choices and value not in setting.choices:
            raise PipelineError(f"{where} must be one of {'|'.join(setting.choices)}, got {value!r}")
        return value
    if kind in ("strs", "paths"):
        if (not isinstance(value, (list, tuple))
                or not all(isinstance(v, str) and v for v in value)):
            raise PipelineError(f"{where} must be a list of names, e.g. [QUAT1, QUAT2], got "
                                f"{value!r}")
        return tuple(value)
    if kind == "bands":
        ok = isinstance(value, (list, tuple)) and value and all(
            isinstance(b, (list, tuple)) and len(b) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in b) and b[0] < b[1] for b in value)
        if not ok:
            raise PipelineError(f"{where} must be a list of [low, high] wavelength bands in A, "
                                f"e.g. [[2500, 2700], [2790, 2810]], got {value!r}")
        return tuple((float(lo), float(hi)) for lo, hi in value)
    if kind == "floats":
        if (not isinstance(value, (list, tuple)) or not value
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) for v in value)):
            raise PipelineError(f"{where} must be a list of numbers, e.g. [2479.0, 0.4], "
                                f"got {value!r}")
        return tuple(float(v) for v in value)
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
    lo, hi = setting.low, setting.high
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise PipelineError(f"{where} must be {rng}, got {value!r}")
    return value


def _expand(key, pattern) -> list[Path]:
    paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise PipelineError(f"config key '{key}': no file matches {pattern}")
    return paths
