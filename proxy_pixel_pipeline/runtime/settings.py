"""Every configuration key, declared once: type, default, range or choices, stages, doc.

:class:`~.config.Config` (the validated settings), its validation, the
per-stage digests and the repository's ``config.yaml`` (:func:`render_yaml`;
a test checks that the file and these declarations agree) all follow from
:data:`SETTINGS`.  ``stages`` lists the stages whose outputs change with the
key (see :mod:`.registry`); keys that change only speed list none.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

import yaml

__all__ = ["Setting", "SETTINGS", "REQUIRED", "by_name", "keys_of_stage", "path_keys", "render_yaml",
           "render_config"]


class _Required:
    def __repr__(self):
        return "REQUIRED"


#: Default of a key every config must give.
REQUIRED = _Required()


@dataclass(frozen=True)
class Setting:
    """One configuration key.

    Attributes
    ----------
    name : str
        YAML key.
    kind : str
        ``str``, ``int``, ``float``, ``bool``, ``path`` (a file, relative to the
        config file), ``glob`` (a pattern of files, likewise), ``paths`` (a list
        of files, likewise), ``strs`` (a list of words), ``bands`` (a list of
        ``[low, high]`` pairs of numbers) or ``floats`` (a
        list of numbers, kept as a tuple).
    default
        Value when the key is absent; :data:`REQUIRED` if it must be given.
    stages : tuple of int
        Stages whose outputs depend on the key (empty: speed only).
    doc : str
        What it does, in a line or two (the comment in ``config.yaml``).
    section : str
        Heading it is listed under in ``config.yaml``.
    choices : tuple of str, optional
        Allowed values of a ``str`` key.
    low, high : float, optional
        Inclusive bounds of a number.
    nullable : bool
        ``null`` is allowed (the default may then be None).
    example : str, optional
        Value written in ``config.yaml`` for a required key.
    """

    name: str
    kind: str
    default: object
    stages: tuple
    doc: str
    section: str
    choices: tuple = None
    low: float = None
    high: float = None
    nullable: bool = False
    example: str = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def python_type(self):
        return {"str": str, "int": int, "float": float, "bool": bool,
                "path": str, "glob": str, "floats": tuple, "strs": tuple, "paths": tuple,
                "bands": tuple}[self.kind]


_REQ = "required"
_IN = "input"
_S1 = "stage 1: proxy matching"
_S2 = "stage 2: frames"
_S34 = "stages 3-4: double-Gaussian profile fits"
_S5 = "stage 5: infill and cosmic rays (lacosmic, van Dokkum 2001)"
_S6 = "stage 6: spectra and light curves (Horne 1986)"
_S7 = "stage 7: transit and systematics fit (batman, emcee), one visit or several"

SETTINGS = (
    # ---- required (other tools write configs with these names)
    Setting("dark_frames", "glob", REQUIRED, (1,), "glob of dark FITS files", _REQ,
            example="data/demo/darks/dark_*.fits"),
    Setting("science_frames", "glob", REQUIRED, (2, 3), "glob of science FITS files", _REQ,
            example="data/demo/science/science_*.fits"),
    Setting("spectral_mask", "path", REQUIRED, (1, 3),
            "2D FITS (nonzero = spectral pixel) or CSV of the original code's tags, one a line, "
            "tag = columns x row + column (2048 x row + column on CUTE frames)", _REQ,
            example="data/demo/spectral_mask.fits"),
    Setting("output_dir", "path", REQUIRED, (), "all outputs go here", _REQ,
            example="data/demo/output"),
    Setting("proxy_method", "str", REQUIRED, (1,),
            "median | lsq  (how a proxy is chosen, see README)", _REQ, choices=("median", "lsq"),
            example="median"),
    # ---- input
    Setting("missing_value", "float", None, (1, 2, 3),
            "sentinel marking missing pixels (e.g. 0); NaN is always missing", _IN, nullable=True),
    Setting("candidate_pixels", "path", None, (1,),
            "optional FITS mask or CSV of tags (as spectral_mask): only these non-spectral "
            "pixels may serve as proxies (the original code's candidate list); null = all",
            _IN, nullable=True),
    Setting("candidate_margin", "float", 6.0, (1,),
            "pixels: non-spectral pixels this close to the spectral mask serve as no proxy "
            "(flag NEAR_MASK): a trace smeared by pointing jitter spills starlight on them in "
            "some frames, and the backgrounds of the pixels they serve rise with it. wasp189b "
            "seed 5: white-light background error 13 500 ADU per frame at 0, 6900 at 3, 5450 at "
            "6, in-trace residual 1.04x the oracle at all three (docs/unbiased_fluxes.md); "
            "0 = every non-spectral pixel (the seed's method)", _IN, low=0.0),
    Setting("exclude_pixels", "path", None, (1,),
            "optional FITS mask or CSV of tags: pixels excluded on both sides (no proxy for a "
            "spectral one, never a proxy; flag EXCLUDED), as the original's hot/lost-pixel list",
            _IN, nullable=True),
    Setting("ccdtemp_key", "str", "CCDTEMP", (1,),
            "header keyword of the CCD temperature [degC] in the frames (time_key and "
            "exptime_key: see stage 6)", _IN),
    # ---- stage 1
    Setting("hot_pixel_sigma", "float", 15.0, (1,),
            "hot = median dark level > median + this x robust sigma (1.4826 MAD) of all pixels; "
            "high because dark current is log-normal: 5 flags the normal high tail (3x the true "
            "hot pixels on the demo data)", _S1, low=0.5),
    Setting("min_valid_samples", "int", 10, (1,),
            "pixels (and pixel pairs) with fewer valid darks are excluded", _S1, low=2),
    Setting("median_mode", "str", "exact", (1,),
            "exact | fast: median rule on all candidates (exact, pruned by |median - mean| <= "
            "std) or on the prefilter_count best by LSQ (fast: not faster in practice and "
            "differs for ~30% of pixels)", _S1, choices=("fast", "exact")),
    Setting("median_candidates", "int", 10, (1,),
            "k: candidates with |residual median| closest to 0, then min std", _S1, low=1),
    Setting("prefilter_count", "int", 64, (1,),
            "M: candidates kept per pixel by the matrix-product LSQ score", _S1, low=1),
    Setting("proxy_count", "int", 16, (1,),
            "K: proxies per spectral pixel, combined robustly in stage 2 (residual 1.04x the "
            "noise floor instead of 1.33x for K = 1 on held-out demo data; docs/proxy_count.md). "
            "1 = the seed's single proxy (with proxy_combine: median, proxy_offset: false)",
            _S1, low=1),
    Setting("proxy_cross_fit", "bool", True, (1,),
            "K > 1: the darks split into two interleaved halves (even and odd in file order); "
            "K/2 proxies chosen on one, their offsets, std and sample counts measured on the "
            "other, K/2 the other way round (K columns; an odd K gives the even darks one "
            "more), so no offset shares the noise it was chosen on: stage 2's mean background "
            "error -0.112 -> -0.010 ADU per trace pixel on the demo data, +0.075 -> +0.010 on "
            "a set whose trace lies among brighter candidates (with proxy_clip_sigma 4), for "
            "1.2x the matching time; fewer than 2 x min_valid_samples darks: plain matching, "
            "with a warning.  K = 1 (the seed's single proxy) is never cross-fitted; "
            "docs/unbiased_fluxes.md", _S1),
    Setting("block_size", "int", 512, (),
            "spectral pixels per block (unit of work, MPI balance and checkpoints)", _S1, low=1),
    Setting("candidate_chunk", "int", 4096, (),
            "candidates per matrix product (kept small so it stays in cache)", _S1, low=64),
    Setting("blas_threads", "int", 0, (),
            "BLAS threads per rank; 0 = cores on the node / ranks on the node", _S1, low=0),
    # ---- stage 2
    Setting("proxy_combine", "str", "clipped_mean", (2,),
            "median | clipped_mean: how K > 1 proxies' values make the background", _S2,
            choices=("median", "clipped_mean")),
    Setting("proxy_clip_sigma", "float", 4.0, (2,),
            "clipped_mean: proxies' values beyond this many robust sigma of their median are "
            "left out; 3 clips more of a skewed dark current's long side (with cross-fitted "
            "proxies: mean background error -0.032 ADU against -0.010 at 4 on the demo data, "
            "residual 1.039 against 1.037 times the oracle; docs/unbiased_fluxes.md)", _S2,
            low=1.0),
    Setting("proxy_offset", "bool", True, (2,),
            "add each proxy's median dark residual (spectral - proxy) to its value", _S2),
    Setting("proxy_hit_sigma", "float", 5.0, (2,),
            "a proxy value this many sigma above its own science series is a cosmic ray and is "
            "dropped (one proxy: the pixel is infilled in stage 5); 0 = off", _S2, low=0.0),
    Setting("scattered_light_order", "int", 1, (2,),
            "order (in column and row) of the smooth excess over the darks' median fitted to each "
            "science frame's non-spectral pixels, with a term in each pixel's dark level (the "
            "temperature law); each spectral pixel's background is corrected by that field's "
            "difference between it and its proxies, which lie elsewhere on the detector. Scattered "
            "light changing across the frame: white-light background error 24 500 -> 5850 ADU "
            "per frame on wasp189b seed 5, 37 200 -> 5450 on a held-out set; unchanged without "
            "it (docs/unbiased_fluxes.md). 0 = off (the seed's method)", _S2, low=0, high=3),
    Setting("proxy_series_min_frames", "int", 10, (2,),
            "with at least this many science frames each proxy's value is taken from its model "
            "over them (the frame's smooth excess and dark-level term, the pixel's own level and "
            "temperature response) instead of its noisy reading; pixels the model does "
            "not describe keep part of their own. White-light background error per frame 0.126 -> "
            "0.098 % of the flux on wasp189b seed 5, 0.136 -> 0.094 % on kelt9b seed 11; "
            "in-trace residual 1.04 -> 1.02x the oracle's (docs/unbiased_fluxes.md). "
            "0 = off", _S2, low=0),
    Setting("temporal_min_frames", "int", 5, (2, 5),
            "fewest science frames for the time-series cosmic-ray checks (proxy_hit_sigma, "
            "temporal_sigma); with fewer only L.A.Cosmic runs", _S2, low=3),
    # ---- stages 3-4
    Setting("bin_width", "int", 25, (3, 4), "columns per bin (last partial bin kept)", _S34, low=1),
    # ---- stage 5
    Setting("fill_negative", "bool", True, (5,),
            "infill negative pixels too, not only empty ones", _S5),
    Setting("negative_sigma", "float", 3.0, (5,),
            "... those below -negative_sigma x their noise; 0 = every negative pixel (the "
            "seed's rule, biases faint flux up: see README)", _S5, low=0.0),
    Setting("gain", "float", 1.5, (2, 5),
            "e-/ADU: photon noise of the signal in the error model", _S5, low=1e-6),
    Setting("read_noise", "float", 3.5, (2, 5),
            "e-: floor of the background noise, sqrt(2) x read noise / gain (gain and "
            "read_noise also floor stage 2's BKG_ERR)", _S5, low=0.0),
    Setting("temporal_sigma", "float", 5.0, (5,),
            "a trace pixel this many sigma above what the other frames predict (its level "
            "across frames scaled by the frame's fitted flux) is a cosmic ray; 0 = off", _S5,
            low=0.0),
    Setting("temporal_neighbor_sigma", "float", 3.5, (5,),
            "neighbours of a time-series hit above this many sigma belong to it (streaks)", _S5,
            low=0.0),
    Setting("lacosmic_contrast", "float", 2.0, (5,),
            "Laplacian-to-fine-structure contrast (2 for critically sampled)", _S5, low=0.0),
    Setting("lacosmic_cr_threshold", "float", 6.0, (5,),
            "Laplacian S/N threshold for a cosmic ray (the original code's 6: L.A.Cosmic runs "
            "after the time-series check, for what it cannot see)", _S5, low=0.0),
    Setting("lacosmic_neighbor_threshold", "float", 4.0, (5,),
            "threshold for neighbours of detected cosmic rays", _S5, low=0.0),
    Setting("lacosmic_maxiter", "int", 4, (5,), "lacosmic iterations", _S5, low=1),
    Setting("cosmic_grow", "int", 1, (5,),
            "rings of pixels around every cosmic ray found that take the series' prediction "
            "too, whatever their value (a hit's charge spreads below any threshold: on dense "
            "cosmic rays 2.3 % of it stayed, 0.05 % with 1; DQ COSMIC_GROWN); 0 = none", _S5,
            low=0, high=3),
    # ---- stage 6
    Setting("extract_profile", "str", "follow", (6,),
            "follow | template | fit: spatial profile of the optimal extraction: the whole "
            "series' template moved and smeared to each frame's fitted offset, tilt and width "
            "(follow: pointing jitter moves and widens the trace), the template moved only "
            "(template), or each frame's stage-4 model (fit); docs/extraction.md", _S6,
            choices=("follow", "template", "fit")),
    Setting("extract_sigma", "float", 5.0, (6,),
            "reject a pixel more than this many sigma off the profile fit (worst first, one "
            "at a time)", _S6, low=1.0),
    Setting("extract_min_weight", "float", 0.5, (6,),
            "flag a column LOW_WEIGHT when its usable pixels hold less of the profile", _S6,
            low=0.0, high=1.0),
    Setting("extract_error_scale", "bool", False, (6,),
            "scale stage 5's ERR for each frame by what its background-dominated (wing) residuals "
            "measure (header ERRSCALE; they hold the profile's errors too, so this overestimates "
            "a calibrated ERR); false = ERR as given", _S6),
    Setting("profile_spill", "bool", True, (6,),
            "follow: the optimal flux counts the light a moved or smeared trace carries past the "
            "aperture (the template moved and smeared like the frame gives the share left "
            "inside); false: the flux inside the aperture. White light against the oracle's "
            "whole-trace flux on wasp189b seed 5: 0.0044 -> 0.0011 rms per frame "
            "(docs/extraction.md)", _S6),
    Setting("profile_smooth", "int", 25, (6,),
            "columns of the smoothing (Savitzky-Golay, 2nd order) of the template along the "
            "dispersion axis; 1 = none", _S6, low=1),
    Setting("wavelength_solution", "floats", None, (6,),
            "polynomial in the column number, A, lowest order first ([2479.0, 0.4] = 2479 A + "
            "0.4 A per column); null = no wavelengths", _S6, nullable=True),
    Setting("time_key", "str", "MJD-OBS", (6,),
            "science header keyword of the exposure start, MJD (a value above 2400000.5 is "
            "taken as a JD, e.g. time_key: JD)", _S6),
    Setting("exptime_key", "str", "EXPTIME", (6,),
            "header keyword of the exposure time, s (mid-exposure = start + half of it)", _S6),
    Setting("channel_width", "int", 100, (6,), "columns per spectroscopic light-curve channel",
            _S6, low=1),
    Setting("channel_wavelengths", "bands", None, (6,),
            "spectroscopic channels as [low, high] bands in A (they may overlap, e.g. a line's "
            "narrow band inside broader channels), instead of channel_width columns; needs "
            "wavelength_solution; null = channel_width", _S6, nullable=True),
    Setting("orbit_gap", "float", 20.0, (6,),
            "minutes between frames that start a new orbit window (the orbit number and the "
            "time since the window's start go into light_curves.fits for the systematics)",
            _S6, low=0.0),
    Setting("header_regressors", "strs", (), (6,),
            "science header keywords copied per frame into light_curves.fits (e.g. attitude "
            "quaternions), for the systematics model (systematics_extra)", _S6),
    Setting("transit_model", "str", "none", (6, 7),
            "none | box | batman: the transit (box: transit_mid, transit_duration; batman: "
            "transit_mid, planet_*, limb_darkening); stage 6 normalises the light curves "
            "out of transit, stage 7 fits it", _S7, choices=("none", "box", "batman")),
    Setting("transit_mid", "float", None, (6, 7),
            "mid-transit time of this visit, MJD (the starting value when fit_mid_time)", _S7,
            nullable=True),
    Setting("transit_duration", "float", None, (6, 7),
            "box model: full transit duration, days", _S7, low=0.0, nullable=True),
    Setting("planet_period", "float", None, (6, 7), "batman: orbital period, days", _S7,
            low=0.0, nullable=True),
    Setting("planet_a_rs", "float", None, (6, 7), "batman: semi-major axis / stellar radius",
            _S7, low=1.0, nullable=True),
    Setting("planet_inclination", "float", None, (6, 7), "batman: orbital inclination, degrees",
            _S7, low=0.0, high=90.0, nullable=True),
    Setting("limb_darkening", "floats", None, (6, 7),
            "batman: limb-darkening coefficients (1 linear, 2 quadratic, 4 nonlinear); null = "
            "uniform disc", _S7, nullable=True),
    Setting("fit_geometry", "bool", False, (7,),
            "white light: a/R* and inclination free with Gaussian priors (planet_a_rs +- "
            "planet_a_rs_err, planet_inclination +- planet_inclination_err); the channels "
            "keep the white fit's values", _S7),
    Setting("planet_a_rs_err", "float", None, (7,), "fit_geometry: prior width of a/R*", _S7,
            low=0.0, nullable=True),
    Setting("planet_inclination_err", "float", None, (7,),
            "fit_geometry: prior width of the inclination, degrees", _S7, low=0.0, nullable=True),
    Setting("fit_mid_time", "bool", False, (7,),
            "each visit's mid-transit time free (uniform within mid_time_window of its "
            "transit_mid); false = fixed at transit_mid", _S7),
    Setting("mid_time_window", "float", 0.04, (7,),
            "fit_mid_time: half-width of the mid-transit time's prior, days", _S7, low=0.0),
    Setting("systematics_ramp", "str", "auto", (7,),
            "auto | exp | poly | none: ramp in the time since each orbit window's start "
            "(throughput settling); auto: each visit takes the exponential (each timescale) or "
            "the polynomial (each degree) of lowest BIC", _S7,
            choices=("auto", "exp", "poly", "none")),
    Setting("systematics_ramp_order", "int", 3, (7,),
            "poly, auto: highest degree of the polynomial ramp; each visit takes the degree "
            "from 1 up to it of lowest BIC", _S7, low=1, high=4),
    Setting("systematics_ramp_timescales", "floats", (5.0, 10.0, 20.0, 40.0), (7,),
            "exp, auto: ramp timescale(s), minutes; each visit takes the one of lowest BIC",
            _S7),
    Setting("systematics_first_orbit", "str", "own", (7,),
            "keep | drop | own: a visit's first orbit window (which settles more strongly) like "
            "the others, left out, or with its own offset and ramp", _S7,
            choices=("keep", "drop", "own")),
    Setting("systematics_visit_order", "int", 2, (7,),
            "highest degree of a polynomial in time over each visit (slow drift): each visit "
            "takes the degree from 1 up to it of lowest BIC (wasp189b seed 5, visit 2: Rp/R* "
            "0.1163 +- 0.0024 with degree 1, 0.1093 +- 0.0032 with 2, truth 0.1047); 0 = none",
            _S7, low=0, high=3),
    Setting("systematics_offset_order", "int", 2, (7,),
            "terms in the trace's measured offset (pointing): 0 none, 1 linear, 2 + quadratic "
            "(light lost at a slit edge grows with the square of the offset)",
            _S7, low=0, high=2),
    Setting("systematics_width_order", "int", 2, (7,),
            "terms in the trace's measured width (jitter smear): 0 none, 1 linear, 2 + quadratic "
            "(slit loss grows with the smear's variance: on wasp189b seed 5 the white fit's "
            "reduced chi2 8.7 -> 3.7 and BIC 494 -> 231 from linear to quadratic terms)",
            _S7, low=0, high=2),
    Setting("systematics_temperature_order", "int", 0, (7,),
            "terms in the CCD temperature: 0 none, 1 linear, 2 + quadratic", _S7, low=0, high=2),
    Setting("systematics_extra", "strs", (), (7,),
            "more linear regressors: header keywords listed in header_regressors", _S7),
    Setting("channel_common_mode", "str", "model", (7,),
            "model | empirical | none: each channel divided by the white light's fitted "
            "systematics model (model) or by the white light over its transit model "
            "(empirical), then fitted with a constant and a slope in time; none = each channel "
            "with the full systematics basis", _S7, choices=("model", "empirical", "none")),
    Setting("joint_visits", "paths", (), (7,),
            "config files of other visits of the same planet (each having finished stage 6), "
            "fitted jointly with this one: Rp/R* shared, systematics (and mid-transit time) "
            "per visit", _S7),
    Setting("fit_sampler", "str", "emcee", (7,),
            "emcee | lsq: posterior sampling, or least squares with errors from the "
            "covariance (a quick look)", _S7, choices=("emcee", "lsq")),
    Setting("emcee_walkers", "int", 0, (7,), "walkers; 0 = max(16, 4 x free parameters)", _S7,
            low=0),
    Setting("emcee_steps", "int", 2000, (7,), "steps per walker, burn-in included", _S7, low=10),
    Setting("emcee_burn", "int", 500, (7,), "steps discarded as burn-in", _S7, low=0),
    Setting("fit_seed", "int", 1, (7,),
            "seed of the walkers and sampler (each channel derives its own: results do not "
            "depend on the ranks)", _S7, low=0),
    Setting("inflate_errors", "bool", True, (7,),
            "widen each visit's errors by sqrt(reduced chi2) and the red-noise factor beta "
            "when above 1", _S7),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def by_name(name) -> Setting:
    """The declaration of key ``name``."""
    return _BY_NAME[name]


def keys_of_stage(number) -> tuple:
    """The keys that change stage ``number``'s own outputs, in declaration order."""
    return tuple(s.name for s in SETTINGS if number in s.stages)


def path_keys() -> tuple:
    """Keys holding paths or globs (relative to the config file; recorded by name in headers)."""
    return tuple(s.name for s in SETTINGS if s.kind in ("path", "glob", "paths"))


_VALUE_COLUMN = 29
_WIDTH = 100


def render_yaml() -> str:
    """The repository's ``config.yaml``: every key with its default (or example) and doc."""
    lines = [
        "# Proxy Pixel Pipeline configuration, shared by the stage scripts.",
        "# Relative paths are relative to this file's folder.  Every key but the first",
        "# five has the default shown; unknown keys are an error.",
        "# This file runs the pipeline on the demo data made by `make demo`",
        "# (or `python simulate.py --preset demo --out data/demo`).",
        "# Generated from proxy_pixel_pipeline/runtime/settings.py (python -m proxy_pixel_pipeline.runtime.settings).",
    ]
    values = {s.name: s.example if s.required else _yaml_value(s.default) for s in SETTINGS}
    return "\n".join(lines + _key_lines(values)) + "\n"


def render_config(values, comments=()) -> str:
    """A config file setting ``values``, each key with its doc, in declaration order.

    For tools that write a config for the pipeline (the simulator): the keys
    and their comments come from :data:`SETTINGS`, so the file reads like the
    repository's ``config.yaml`` with only the given keys.

    Parameters
    ----------
    values : dict
        Key to value (str, number, bool, None or a list of numbers); the
        values are written as YAML scalars or flow lists and are not
        range-checked here (:func:`~.config.load_config` does that).
    comments : sequence of str
        Lines written first, each as a ``#`` comment.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        A key that is not a setting (the message names it).
    """
    for key in values:
        if key not in _BY_NAME:
            raise ValueError(f"render_config: unknown config key '{key}'")
    lines = [f"# {text}" if text else "#" for text in comments]
    body = _key_lines({s.name: _config_value(values[s.name]) for s in SETTINGS if s.name in values})
    return "\n".join(lines + (body if lines else body[1:])) + "\n"


def _key_lines(text_of) -> list:
    """``key: value  # doc`` lines (docs wrapped at 100 columns) under section headings, for the
    keys of ``text_of`` (name -> value as YAML text), in declaration order."""
    lines, section = [], None
    for s in SETTINGS:
        if s.name not in text_of:
            continue
        if s.section != section:
            section = s.section
            lines += ["", f"# ---- {section}"]
        key = f"{s.name}: {text_of[s.name]}"
        width = max(_VALUE_COLUMN, len(key) + 3)
        wrapped = textwrap.wrap(s.doc, _WIDTH - width - 2) or [""]
        lines.append(f"{key:<{width}}# {wrapped[0]}")
        lines += [f"{'':<{width}}# {more}" for more in wrapped[1:]]
    return lines


def _config_value(value) -> str:
    """``value`` as YAML text that reads back as ``value`` (strings quoted when they must be;
    numpy numbers as Python ones)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_config_value, value)) + "]"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    text = _yaml_value(value)
    if isinstance(value, str):
        try:
            same = yaml.safe_load(f"key: {text}") == {"key": value}
        except yaml.YAMLError:
            same = False
        if not same:
            text = json.dumps(value)          # a double-quoted YAML scalar
    return text


def _yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_yaml_value, value)) + "]"
    return repr(value) if isinstance(value, float) else str(value)


if __name__ == "__main__":
    print(render_yaml(), end="")
