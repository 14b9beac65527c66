"""Checks of a :class:`~.parameters.SimulationParameters` set: one ValueError naming the field."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["check_parameters", "is_int", "is_num"]


def check_parameters(p) -> None:
    """Raise ValueError naming the first field of ``p`` with an invalid value.

    Parameters
    ----------
    p : SimulationParameters

    Raises
    ------
    ValueError
        ``simulation parameter 'NAME' must be WHAT, got VALUE``.
    """
    def need(ok, name, what):
        if not ok:
            raise ValueError(f"simulation parameter '{name}' must be {what}, "
                             f"got {getattr(p, name)!r}")

    for name in ("n_rows", "n_columns"):
        need(is_int(getattr(p, name)) and getattr(p, name) >= 8, name, "an integer >= 8")
    need(is_int(p.n_darks) and p.n_darks >= 2, "n_darks", "an integer >= 2")
    need(is_int(p.n_science) and p.n_science >= 1, "n_science", "an integer >= 1")
    for name in ("exptime", "cadence", "orbit_period", "pixel_size", "gain", "saturation",
                 "dark_median", "doubling_mean", "glow_scale", "hot_dark_min", "hot_dark_max",
                 "resolution", "star_teff", "peak_signal_e", "trace_sigma_left",
                 "trace_sigma_right", "trace_sigma_ratio", "mask_nsigma",
                 "cosmic_deposit_median", "saa_rate_factor", "wave_min"):
        need(is_num(getattr(p, name)) and getattr(p, name) > 0, name, "a number > 0")
    for name in ("bias", "read_noise", "dark_sigma_ln", "doubling_sigma", "glow_amplitude",
                 "temp_orbit_amplitude", "temp_drift", "temp_jitter", "trace_separation_max",
                 "trace_separation_power", "peak_ratio_amplitude", "mask_margin",
                 "cosmic_rate", "cosmic_deposit_sigma_ln", "cosmic_streak_min"):
        need(is_num(getattr(p, name)) and getattr(p, name) >= 0, name, "a number >= 0")
    for name in ("temp_ref", "science_temp_offset", "trace_slope"):
        need(is_num(getattr(p, name)), name, "a finite number")
    for name in ("hot_fraction", "cosmic_streak_fraction", "saa_frame_fraction",
                 "missing_frame_fraction"):
        need(is_num(getattr(p, name)) and 0 <= getattr(p, name) <= 1, name, "in [0, 1]")
    need(is_num(p.transit_depth) and 0 <= p.transit_depth < 1, "transit_depth",
         "in [0, 1)")
    for name in ("wave_max", "hot_dark_max", "cosmic_streak_max", "peak_ratio_mean"):
        need(is_num(getattr(p, name)), name, "a finite number")
    need(p.wave_max > p.wave_min, "wave_max", "> wave_min")
    need(p.hot_dark_max >= p.hot_dark_min, "hot_dark_max", ">= hot_dark_min")
    need(p.cosmic_streak_max >= p.cosmic_streak_min, "cosmic_streak_max",
         ">= cosmic_streak_min")
    need(p.peak_ratio_mean - p.peak_ratio_amplitude > 0, "peak_ratio_mean",
         "> peak_ratio_amplitude (peak ratio must stay positive)")
    need(is_int(p.missing_runs_max) and p.missing_runs_max >= 1, "missing_runs_max",
         "an integer >= 1")
    need(is_int(p.missing_run_min) and p.missing_run_min >= 1, "missing_run_min",
         "an integer >= 1")
    need(is_int(p.missing_run_max) and p.missing_run_max >= p.missing_run_min,
         "missing_run_max", "an integer >= missing_run_min")
    need(len(p.glow_corner) == 2 and all(is_num(v) for v in p.glow_corner),
         "glow_corner", "a (row, column) pair of fractions")
    need(all(len(line) == 3 and all(is_num(v) for v in line) and 0 <= line[1] <= 1
             and line[2] >= 0 for line in p.absorption_lines),
         "absorption_lines", "a sequence of (centre A, depth in [0, 1], sigma A >= 0)")
    need(p.science_above_darks is None or is_num(p.science_above_darks),
         "science_above_darks", "None or a number")
    need(p.trace_y0 is None or is_num(p.trace_y0), "trace_y0", "None or a number")
    for name in ("scatter_e", "scatter_sigma", "scatter_gradient", "throughput_sigma",
                 "trace_separation_min"):
        need(is_num(getattr(p, name)) and getattr(p, name) >= 0, name, "a number >= 0")
    need(is_num(p.throughput_min) and is_num(p.throughput_max)
         and 0 < p.throughput_min <= 1 <= p.throughput_max, "throughput_min",
         "> 0 and <= 1 <= throughput_max")
    need(is_num(p.dead_fraction) and 0 <= p.dead_fraction < 1, "dead_fraction",
         "in [0, 1)")
    need(is_int(p.dead_run_min) and 1 <= p.dead_run_min <= p.dead_run_max
         and is_int(p.dead_run_max), "dead_run_min", "an integer in [1, dead_run_max]")
    need(p.trace_columns is None or (len(p.trace_columns) == 2
                                        and all(is_int(v) for v in p.trace_columns)
                                        and 0 <= p.trace_columns[0] < p.trace_columns[1]
                                        < p.n_columns),
         "trace_columns", "None or (first, last) columns within the frame")
    need(p.mask_lines is None or (len(p.mask_lines) == 2
                                     and all(len(line) == 2 and all(is_num(v) for v in line)
                                             for line in p.mask_lines)),
         "mask_lines", "None or ((y1 at 0, y1 at n_columns), (y2 at 0, y2 at n_columns))")
    need(p.mask_half_height is None or (is_num(p.mask_half_height)
                                           and p.mask_half_height > 0),
         "mask_half_height", "None or a number > 0")
    need(p.missing_value is None or (is_num(p.missing_value)
                                        and float(p.missing_value).is_integer()
                                        and -2**31 <= p.missing_value < 2**31),
         "missing_value", "None or an integer (frames are then written as int32)")
    _check_systematics(p, need)


def _check_systematics(p, need) -> None:
    """The fields of the modelable systematics, the visits and the planet."""
    need(is_num(p.orbit_visible_fraction) and 0 <= p.orbit_visible_fraction <= 1
         and (p.orbit_visible_fraction == 0
              or p.orbit_visible_fraction * p.orbit_period >= p.exptime),
         "orbit_visible_fraction", "in [0, 1], with a window (fraction x orbit_period) at least "
         "one exposure long")
    for name in ("transit_offset_max", "visit_trace_shift", "pointing_offset_sigma",
                 "pointing_drift", "jitter_median", "jitter_sigma_ln", "slit_loss",
                 "ramp_spread", "drift_amplitude", "ramp_first_orbit"):
        need(is_num(getattr(p, name)) and getattr(p, name) >= 0, name, "a number >= 0")
    for name in ("plate_scale", "ramp_tau"):
        need(is_num(getattr(p, name)) and getattr(p, name) > 0, name, "a number > 0")
    need(is_num(p.ramp_amplitude) and 0 <= p.ramp_amplitude * max(p.ramp_first_orbit, 1) < 0.5,
         "ramp_amplitude", ">= 0 and < 0.5 / ramp_first_orbit")
    need(p.ramp_shape in ("exponential", "phase_cubic"), "ramp_shape",
         '"exponential" or "phase_cubic"')
    need(is_int(p.visit_spacing) and p.visit_spacing >= 1, "visit_spacing", "an integer >= 1")
    need(is_int(p.drift_order) and 0 <= p.drift_order <= 5, "drift_order", "an integer in [0, 5]")
    need(p.planet_period is None or (is_num(p.planet_period) and p.planet_period > 0),
         "planet_period", "None or a number > 0 (days)")
    if p.planet_period is not None:
        need(is_num(p.planet_a_rs) and p.planet_a_rs > 1, "planet_a_rs",
             "a number > 1 when planet_period is set")
        need(is_num(p.planet_inclination) and 0 < p.planet_inclination <= 90,
             "planet_inclination", "in (0, 90] degrees when planet_period is set")
    need(len(p.limb_darkening) in (0, 1, 2, 4) and all(is_num(v) for v in p.limb_darkening),
         "limb_darkening", "0, 1, 2 or 4 numbers")
    need(all(len(line) == 3 and all(is_num(v) for v in line) and line[1] >= 0 and line[2] > 0
             for line in p.planet_lines),
         "planet_lines", "a sequence of (centre A, extra Rp/R* >= 0, sigma A > 0)")


def is_int(value) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_num(value) -> bool:
    """A finite real number (Python or numpy), not a bool."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and math.isfinite(value))
