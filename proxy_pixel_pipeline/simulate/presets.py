"""Named parameter sets (:data:`PRESETS`) and how a preset and overrides become parameters."""

from __future__ import annotations

import dataclasses

from .parameters import SimulationParameters

__all__ = ["PRESETS", "resolve_parameters"]

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
# amplitude changes of 0.5-1.3x from frame to frame, CCD temperatures -6 to -12 degC along the
# orbit, and sky darks holding scattered light that changes with pointing.
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
    throughput_sigma=0.17, throughput_min=0.5, throughput_max=1.3,
)

#: Named parameter sets; see the package docstring for the table of values.
PRESETS: dict[str, SimulationParameters] = {
    "tiny": _TINY,
    "demo": _DEMO,
    "cute": _CUTE,
    "demo_warm": dataclasses.replace(_DEMO, science_above_darks=4.0),
    "cute_warm": dataclasses.replace(_CUTE, science_above_darks=4.0),
    "wasp189b": _WASP189B,
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

