"""Named parameter sets (:data:`PRESETS`) and how a preset and overrides become parameters."""

from __future__ import annotations

import ast
import dataclasses

from .parameters import SimulationParameters

__all__ = ["PRESETS", "resolve_parameters", "parse_overrides"]

_TINY = SimulationParameters(
    n_rows=40, n_columns=64, n_darks=30, n_science=6,
    trace_sigma_left=1.0, trace_sigma_right=1.5, trace_separation_max=3.0,
    missing_run_min=8, missing_run_max=128,
    cosmic_rate=3.0,  # raised so that the tiny detector sees a few hits per frame
)
_DEMO = SimulationParameters()
_CUTE = SimulationParameters(
    n_rows=515, n_columns=2048, n_darks=100, n_science=40,
    trace_sigma_left=1.8, trace_sigma_right=2.8, trace_separation_max=10.0,
)
# The WASP-189b visit (visit 5) as CUTE downlinked it and the original pipeline processed it
# (../shared/cute-instrument.md): a 100 x 2048 cut-out, 134 darks and 61 science frames, the
# mask between two straight lines over columns 50-2000 (63,407 spectral pixels), integer ADU
# with lost pixels (~7 % never downlinked or hot), peaks ~6.7 rows apart at the left end, ~9.7
# in the median, widths 3.2 and 3.5 px, amplitudes ~90 ADU with a peak ratio 0.88-1.12,
# CCD temperatures -6 to -12 degC along the orbit, and sky darks holding scattered light that
# changes with pointing.  The frame-to-frame changes of the trace's amplitude (0.5-1.3x in the
# visit's fits) come from systematics a fit can model: frames in orbit windows (half of each
# orbit, 8 exposures of 300 s), the trace moving and smeared by pointing jitter (JITTER
# median 4 arcsec: <= 6 arcsec in ~80 % of exposures; Egan et al. 2023 report 56 %) with
# light lost at the slit edge, a ~1 % throughput ramp in every orbit window (3x in the
# first), a slow drift, the trace 3-5 rows apart from visit to visit.  The planet: WASP-189b
# (Lendl et al. 2020: P = 2.7240330 d, a/R* = 4.60, i = 84.03 deg) with CUTE's broadband
# depth 1.08 % and Mg II Rp/R* ~0.21 (Sreejith et al. 2023), Fe II lines deeper too.
_WASP189B = SimulationParameters(
    n_rows=100, n_columns=2048, n_darks=134, n_science=61,
    temp_ref=-9.0, temp_orbit_amplitude=2.7, temp_drift=0.4, temp_jitter=0.15,
    dark_median=0.5,
    trace_y0=48.5, trace_slope=25.5 / 2048, trace_sigma_left=3.2, trace_sigma_right=3.2,
    trace_sigma_ratio=3.5 / 3.2, trace_separation_min=4.6, trace_separation_max=10.9,
    trace_separation_power=0.3, peak_ratio_mean=1.0, peak_ratio_amplitude=0.12,
    peak_signal_e=225.0, trace_columns=(50, 2000), mask_lines=((32.0, 58.0), (65.0, 90.0)),
    hot_fraction=0.005, dead_fraction=0.065, missing_value=0,
    scatter_e=100.0, scatter_sigma=0.3, scatter_gradient=0.3,
    transit_depth=0.0108, planet_period=2.7240330, planet_a_rs=4.60, planet_inclination=84.03,
    limb_darkening=(0.40, 0.25),
    planet_lines=((2796.35, 0.14, 2.0), (2803.53, 0.14, 2.0),      # Mg II k, h
                  (2586.65, 0.04, 1.5), (2600.17, 0.04, 1.5)),     # Fe II
    orbit_visible_fraction=0.5, transit_offset_max=2880.0, visit_spacing=1,
    visit_trace_shift=2.5, pointing_offset_sigma=0.4, pointing_drift=1.0,
    jitter_median=4.0, jitter_sigma_ln=0.45, plate_scale=2.5, slit_loss=0.001,
    ramp_amplitude=0.01, ramp_tau=900.0, ramp_first_orbit=3.0, ramp_spread=0.3,
    drift_amplitude=0.004, drift_order=2,
)
# A second planet for checks on data nobody tuned to: KELT-9b-like (Gaudi et al. 2017: P =
# 1.4811235 d, a/R* = 3.153, i = 86.79 deg; a hotter star), on the same detector, with other
# systematics: shorter windows (40 % of the orbit, 7 exposures), worse pointing (JITTER median
# 5.5 arcsec), a faster and deeper ramp whose first orbit is only 2x, a linear drift, stronger
# Fe II and a Mg I line, Mg II less extended.
_KELT9B = dataclasses.replace(
    _WASP189B, n_darks=100, n_science=48, temp_ref=-8.0, temp_orbit_amplitude=2.0,
    star_teff=10000.0, peak_signal_e=180.0,
    transit_depth=0.0090, planet_period=1.4811235, planet_a_rs=3.153, planet_inclination=86.79,
    limb_darkening=(0.30, 0.30),
    planet_lines=((2796.35, 0.10, 2.5), (2803.53, 0.10, 2.5), (2586.65, 0.06, 1.5),
                  (2600.17, 0.07, 1.5), (2852.13, 0.03, 1.5)),
    orbit_visible_fraction=0.4, transit_offset_max=2000.0,
    visit_trace_shift=2.0, pointing_offset_sigma=0.6, pointing_drift=0.5,
    jitter_median=5.5, jitter_sigma_ln=0.4, slit_loss=0.002,
    ramp_amplitude=0.015, ramp_tau=600.0, ramp_first_orbit=2.0, ramp_spread=0.4,
    drift_amplitude=0.006, drift_order=1,
)

#: Named parameter sets; see the package docstring for the table of values.
PRESETS: dict[str, SimulationParameters] = {
    "tiny": _TINY,
    "demo": _DEMO,
    "cute": _CUTE,
    "demo_warm": dataclasses.replace(_DEMO, science_above_darks=4.0),
    "cute_warm": dataclasses.replace(_CUTE, science_above_darks=4.0),
    "wasp189b": _WASP189B,
    "kelt9b": _KELT9B,
}


def resolve_parameters(preset, overrides) -> SimulationParameters:
    """Preset name or instance, with field overrides applied and validated."""
    if isinstance(preset, SimulationParameters):
        base = preset
    elif isinstance(preset, str) and preset in PRESETS:
        base = PRESETS[preset]
    else:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    names = {f.name for f in dataclasses.fields(SimulationParameters)}
    for key in overrides:
        if key not in names:
            raise TypeError(f"unknown simulation parameter '{key}'")
    return dataclasses.replace(base, **overrides) if overrides else base



def parse_overrides(items) -> dict:
    """``KEY=VALUE`` texts (a command line's) as field overrides: each value a Python
    literal (number, tuple, None, ...) if it is one, else the text itself
    (``ramp_shape=phase_cubic``).  Keys are checked by :func:`resolve_parameters`."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r}: expected KEY=VALUE")
        try:
            overrides[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key.strip()] = value
    return overrides
