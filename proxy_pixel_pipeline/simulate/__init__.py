"""Synthetic CUTE-like dark and science frames with their ground truth.

The simulator makes the demo input of the pipeline and the yardstick against
which its outputs are judged: every quantity the pipeline tries to recover
(dark background of each pixel, spectral signal, cosmic rays, missing pixels,
transit depth) is written next to the frames as noise-free truth.

Instrument facts
----------------
Taken from the public CUTE papers and marked *[CUTE]* in
:class:`SimulationParameters`:

* Egan, A. et al. 2023, "The On-orbit Performance of the Colorado Ultraviolet
  Transit Experiment Mission", AJ 165, 64 (arXiv:2301.01307): passively
  cooled, back-illuminated NUV-enhanced CCD; bandpass 2479-3306 A; mean
  resolution element 2.9 A; defocused telescope giving a double-peaked
  cross-dispersion profile whose peaks separate along the dispersion axis.
* France, K. et al. 2023, "The Colorado Ultraviolet Transit Experiment
  Mission Overview", AJ 165, 63 (arXiv:2301.02250): 6U CubeSat in a ~560 km
  polar (sun-synchronous) low-Earth orbit, hence a ~96 min orbital period.
* Sreejith, A. G. et al. 2022, "The Autonomous Data Reduction Pipeline for
  the CUTE Mission" (CONTROL), PASP (arXiv:2211.03875): 2048 x 515 pixel
  frames (dispersion x cross-dispersion), exposures of a few minutes, frames
  degraded by cosmic rays, hot pixels and packets lost in the downlink.

Values marked *[approx.]* are plausible for this kind of detector but not
taken from a CUTE document; some (dark-current level, signal level) are chosen
so that the problem the pipeline solves is present and visible.

Physics model
-------------
Frames are ``(rows, columns)`` = (cross-dispersion *y*, dispersion *x*) arrays
in ADU.  For pixel *i* in a frame with CCD temperature *T* and exposure time
*t* the expected number of electrons is::

    D_i(T) = D0_i * 2 ** ((T - T_ref) / d_i)          dark current [e-/s]
    N_i    = D_i(T) * t + s * S_i                     [e-]

with ``D0_i`` log-normal over pixels, multiplied by a smooth glow towards one
corner (so the background is not flat), ``d_i`` the per-pixel doubling
temperature ~ N(6.5, 0.4) degC (each pixel has its own level *and* its own
temperature sensitivity, which is what proxy matching exploits), ``S_i`` the
expected spectral signal (science frames only) and ``s`` the flux scale
(``1 - depth`` during transit, else 1).  A fraction of pixels are *hot*
(log-uniform ``D0`` of tens of e-/s).  The recorded value is::

    ADU_i = round((Poisson(N_i) + C_i + Normal(0, read_noise)) / gain + bias)

clipped to ``[0, saturation]``, where ``C_i`` is the charge of cosmic-ray
hits: a Poisson number per frame (rate per unit detector area and time,
several times higher in frames flagged as South Atlantic Anomaly passages),
each either a point-like hit or a straight streak 2-15 px long at a random
angle, its charge spread bilinearly over the pixels the track crosses.  Lost
downlink packets blank 1-3 runs of consecutive pixels (row-major order, so a
run can wrap onto the next row) in a fraction of frames; they are NaN in
float32 frames or a sentinel value in int32 frames.

CCD temperatures follow the orbit: a sinusoid of the orbital period plus a
slow linear drift and per-frame jitter, darks and science frames each with
their own start phase.  In the ``*_warm`` presets the science frames are
shifted so that the coldest is several degC warmer than the warmest dark,
which forces the pipeline to extrapolate in temperature.

The spectral trace is centred on ``y_c(x) = y0 + slope * x``.  Its
cross-dispersion profile is the sum of two Gaussians at ``y_c -+ sep(x)/2``
with ``sep(x) = sep_max * (x / (nx - 1)) ** p`` (merged at the left edge,
several pixels apart at the right), widths growing linearly along *x* and a
peak ratio ``AMP2/AMP1 = r0 + dr * sin(1.5 pi x / (nx - 1))``.  The column
flux is a photon-counting Planck continuum (rising to the red across the NUV
band) with Gaussian absorption lines (Fe II 2586/2600, Mg II 2796/2803, Mg I
2852 A) broadened by the 2.9 A resolution element, wavelengths mapped
linearly onto columns, scaled so that the brightest pixel receives
``peak_signal_e`` electrons per exposure.  The middle third of the science
frames is in transit.  The spectral mask holds every pixel within
``mask_nsigma * max(width) + sep_max / 2 + mask_margin`` rows of ``y_c(x)``.

Presets
-------
======================  ========  =========  ==========  =====================
quantity                tiny      demo       cute        source
======================  ========  =========  ==========  =====================
rows x columns          40 x 64   128 x 512  515 x 2048  [CUTE] (cute)
dark / science frames   30 / 6    40 / 20    100 / 40    [approx.]
trace sigma left-right  1.0-1.5   1.0-1.8    1.8-2.8     [approx.] px, peak 1
max peak separation     3         6          10          [approx.] px
spectral mask rows      ~18       ~24        ~38         derived
missing run length      8-128     32-1024    32-1024     [approx.] px
cosmic rate             3.0       0.25       0.25        [approx.] /cm2/s
======================  ========  =========  ==========  =====================

All presets share: exposure 300 s, bias 1000 ADU, gain 1.5 e-/ADU, read noise
3.5 e-, dark median 0.3 e-/s at T_ref = -5 degC (90 e- per exposure) with a
log-normal spread of 0.5 in ln, doubling temperature 6.5 +- 0.4 degC, 0.3 %
hot pixels, CCD temperature swing +-1.5 degC per orbit, 30 % of frames with
missing packets, transit depth 2 %, peak signal 300 e-.  ``demo_warm`` and
``cute_warm`` put every science frame at least 4 degC above the warmest
dark.  The tiny preset's cosmic-ray rate is raised so that unit tests see
hits on its 0.005 cm^2 detector.

Output layout
-------------
See :func:`simulate`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..io.atomic import atomic_path, write_text

__all__ = ["SimulationParameters", "PRESETS", "simulate"]

_LN2 = math.log(2.0)
# Second radiation constant h c / k in Angstrom * K (for the Planck continuum).
_C2_ANGSTROM_K = 1.438777e8
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
#: MJD of the first science exposure's start (science headers' ``MJD-OBS``).
_MJD_START = 60310.0


@dataclass(frozen=True)
class SimulationParameters:
    """Every physical quantity of the simulated observation.

    Tags: *[CUTE]* from the CUTE papers (see the module docstring),
    *[approx.]* a plausible value not taken from a CUTE document.

    Parameters
    ----------
    n_rows : int
        Frame rows, cross-dispersion axis. CUTE: 515 [CUTE].
    n_columns : int
        Frame columns, dispersion axis. CUTE: 2048 [CUTE].
    n_darks : int
        Number of dark frames, e.g. 40-100 [approx.].
    n_science : int
        Number of science frames of the transit visit, e.g. 20-60 [approx.].
    exptime : float
        Exposure time of every frame, s. Typical 300 s [approx.; CUTE
        exposures are a few minutes].
    cadence : float
        Time between the starts of consecutive exposures, s (exposure plus
        readout), e.g. 330 s [approx.].
    orbit_period : float
        Orbital period, s: 5760 s (96 min) for a ~560 km orbit [CUTE].
    pixel_size : float
        Pixel pitch, micrometre; only scales the cosmic-ray rate to hits per
        frame. 13.5 um [approx.].
    bias : float
        Electronic offset, ADU, e.g. 1000 [approx.].
    gain : float
        Conversion gain, e-/ADU, e.g. 1.5 [approx.].
    read_noise : float
        Read noise, e- rms, e.g. 3.5 [approx.].
    saturation : float
        Largest value the ADC records, ADU: 65535 for a 16-bit converter
        [approx.].
    temp_ref : float
        Reference CCD temperature, degC, at which the dark current is
        ``D0``; the darks' temperatures are centred on it. -5 degC [approx.].
    dark_median : float
        Median over pixels of ``D0`` (before the glow), e-/s. 0.3 e-/s gives
        90 e- per 300 s, so that pixel-to-pixel differences dwarf the read
        noise [approx.].
    dark_sigma_ln : float
        Standard deviation of ``ln D0`` over pixels (log-normal spread),
        e.g. 0.5 [approx.].
    doubling_mean : float
        Mean over pixels of the doubling temperature ``d_i``, degC, e.g. 6.5
        [approx.; CCD dark current typically doubles every 6-7 degC].
    doubling_sigma : float
        Standard deviation over pixels of ``d_i``, degC, e.g. 0.4 [approx.].
    glow_amplitude : float
        Fractional increase of ``D0`` at the glow corner, e.g. 0.6 [approx.].
    glow_scale : float
        e-folding distance of the glow as a fraction of the frame diagonal,
        e.g. 0.3 [approx.].
    glow_corner : tuple of float
        Glow centre as (row, column) fractions of the frame size, e.g.
        (0.0, 1.0) = first row, last column (near the output amplifier)
        [approx.].
    hot_fraction : float
        Fraction of hot pixels, e.g. 0.003 [approx.; 0.1-0.5 %].
    hot_dark_min, hot_dark_max : float
        Range of ``D0`` of hot pixels, e-/s, drawn log-uniform, e.g. 10-100
        e-/s (3000-30000 e- per 300 s) [approx.].
    temp_orbit_amplitude : float
        Semi-amplitude of the orbital CCD temperature swing, degC, e.g. 1.5
        [approx.; passive cooling makes the CCD follow the orbit].
    temp_drift : float
        Largest total linear temperature drift over a block of frames, degC
        (the actual drift is uniform in +-this), e.g. 1.0 [approx.].
    temp_jitter : float
        Per-frame random temperature scatter, degC rms, e.g. 0.2 [approx.].
    science_temp_offset : float
        Mean science temperature minus ``temp_ref``, degC, e.g. 0.
    science_above_darks : float or None
        If set, science temperatures are shifted so that the coldest science
        frame is this many degC above the warmest dark (``*_warm`` presets:
        4 degC); overrides ``science_temp_offset``.
    wave_min, wave_max : float
        Wavelengths of the first and last column, Angstrom: 2479 and 3306
        [CUTE].
    resolution : float
        Spectral resolution element (FWHM), Angstrom: 2.9 [CUTE].
    star_teff : float
        Temperature of the Planck continuum, K, e.g. 6500 [approx.].
    absorption_lines : tuple of (float, float, float)
        Stellar absorption lines as (centre A, fractional depth, intrinsic
        Gaussian sigma A), before instrumental broadening; defaults Fe II
        2586/2600, Mg II 2796/2803, Mg I 2852 [approx. depths and widths].
    peak_signal_e : float
        Expected signal of the brightest spectral pixel out of transit,
        e- per exposure, e.g. 300 [approx.].
    transit_depth : float
        Fractional flux drop of the in-transit frames (the middle third),
        e.g. 0.02 [approx.; 1-3 %].
    trace_y0 : float or None
        Trace centre row at column 0; None centres the trace in the frame.
    trace_slope : float
        Trace tilt, rows per column, e.g. 0.005 [approx.].
    trace_sigma_left, trace_sigma_right : float
        Width (sigma) of the first Gaussian at the first and last column, px,
        e.g. 1.8 and 2.8 for CUTE [approx.].
    trace_sigma_ratio : float
        Width of the second Gaussian over the first, e.g. 1.1 [approx.].
    trace_separation_max : float
        Peak separation at the last column, px, e.g. 10 [approx.; the
        peaks merge at the other end, Egan et al. 2023].
    trace_separation_power : float
        Exponent ``p`` of ``sep(x) ~ x**p``, e.g. 1.5 [approx.].
    peak_ratio_mean, peak_ratio_amplitude : float
        ``AMP2/AMP1 = mean + amplitude * sin(1.5 pi x/(nx-1))``, e.g. 0.85 and
        0.15 [approx.].
    mask_nsigma : float
        Spectral-mask half height in units of the widest sigma (plus half the
        largest separation and ``mask_margin``), e.g. 4 [approx.].
    mask_margin : float
        Extra rows added to the mask half height, e.g. 0.5.
    mask_half_height : float or None
        If set, the mask half height in rows, replacing the formula above.
    cosmic_rate : float
        Cosmic-ray hits per cm^2 per s outside the SAA, e.g. 0.25 (~140 hits
        per 515 x 2048 frame of 300 s) [approx.].
    cosmic_streak_fraction : float
        Fraction of hits that are streaks, e.g. 0.4 [approx.].
    cosmic_streak_min, cosmic_streak_max : float
        Streak length range, px, uniform, e.g. 2-15 [approx.].
    cosmic_deposit_median : float
        Median charge per pixel of track, e-, e.g. 600 (point-like hits count
        as one pixel) [approx.].
    cosmic_deposit_sigma_ln : float
        Log-normal spread of the deposit, e.g. 0.6 [approx.].
    saa_frame_fraction : float
        Fraction of frames taken during a South Atlantic Anomaly passage,
        e.g. 0.1 [approx.].
    saa_rate_factor : float
        Cosmic-ray rate multiplier in SAA frames, e.g. 5 [approx.].
    missing_frame_fraction : float
        Fraction of frames that lost downlink packets, e.g. 0.3 [approx.].
    missing_runs_max : int
        An affected frame loses 1 to this many runs, e.g. 3 [approx.].
    missing_run_min, missing_run_max : int
        Run length range in pixels (row-major), uniform, e.g. 32-1024
        [approx.].
    missing_value : float or None
        None: frames are float32 with NaN for missing pixels. A number (an
        integer, e.g. 0): frames are int32 and missing pixels hold it.
    scatter_e : float
        Scattered light: mean level at the frame centre, e- per exposure, in
        darks and science frames alike (CUTE's darks are sky frames: the
        shutter failed in orbit), part of the true background; 0 = none
        [approx.; wasp189b: 100].
    scatter_sigma : float
        Frame-to-frame spread of the scattered-light level (log-normal, in
        ln), e.g. 0.3: it changes with pointing [approx.].
    scatter_gradient : float
        Frame-to-frame rms of its linear gradient across the frame, as a
        fraction of the level from one edge to the other, along columns and
        along rows independently, e.g. 0.3 [approx.].
    throughput_sigma : float
        Frame-to-frame rms of the trace's throughput (pointing jitter,
        throughput changes), a factor on the signal of each science frame,
        clipped to [throughput_min, throughput_max]; 0 = constant [wasp189b:
        0.17 with 0.5-1.3, the 1-99 % range of the visit's fitted amplitudes].
    throughput_min, throughput_max : float
        Clip of the throughput factor.
    trace_separation_min : float
        Peak separation at the first column, px (0: the peaks merge there)
        [wasp189b: 4.6, ~6.7 at column 50 where its trace begins].
    trace_columns : (int, int) or None
        First and last column holding the trace (signal and mask); None =
        all [wasp189b: 50-2000].
    mask_lines : ((float, float), (float, float)) or None
        Spectral mask between two straight lines, ``((y1 at column 0, y1 at
        column n_columns), (y2 at 0, y2 at n_columns))``: every pixel with
        ``y1(x) <= row <= y2(x)`` (within ``trace_columns``), as the
        original pipeline's WASP-189b mask ((32, 58), (65, 90)); None = the
        half-height rule above.
    dead_fraction : float
        Fraction of pixels never downlinked: missing in every frame, in
        row-major runs of ``dead_run_min``-``dead_run_max`` pixels [wasp189b:
        ~6.5 %, with the hot pixels ~7 % excluded].
    dead_run_min, dead_run_max : int
        Run length range of the never-downlinked pixels.
    """

    n_rows: int = 128
    n_columns: int = 512
    n_darks: int = 40
    n_science: int = 20
    exptime: float = 300.0
    cadence: float = 330.0
    orbit_period: float = 5760.0
    pixel_size: float = 13.5
    # detector
    bias: float = 1000.0
    gain: float = 1.5
    read_noise: float = 3.5
    saturation: float = 65535.0
    # dark current
    temp_ref: float = -5.0
    dark_median: float = 0.3
    dark_sigma_ln: float = 0.5
    doubling_mean: float = 6.5
    doubling_sigma: float = 0.4
    glow_amplitude: float = 0.6
    glow_scale: float = 0.3
    glow_corner: tuple[float, float] = (0.0, 1.0)
    hot_fraction: float = 0.003
    hot_dark_min: float = 10.0
    hot_dark_max: float = 100.0
    # CCD temperature
    temp_orbit_amplitude: float = 1.5
    temp_drift: float = 1.0
    temp_jitter: float = 0.2
    science_temp_offset: float = 0.0
    science_above_darks: float | None = None
    # spectrum
    wave_min: float = 2479.0
    wave_max: float = 3306.0
    resolution: float = 2.9
    star_teff: float = 6500.0
    absorption_lines: tuple = (
        (2586.65, 0.35, 1.5),   # Fe II
        (2600.17, 0.45, 1.5),   # Fe II
        (2796.35, 0.85, 3.0),   # Mg II k
        (2803.53, 0.80, 3.0),   # Mg II h
        (2852.13, 0.55, 1.5),   # Mg I
    )
    peak_signal_e: float = 300.0
    transit_depth: float = 0.02
    # trace
    trace_y0: float | None = None
    trace_slope: float = 0.005
    trace_sigma_left: float = 1.0
    trace_sigma_right: float = 1.8
    trace_sigma_ratio: float = 1.1
    trace_separation_max: float = 6.0
    trace_separation_power: float = 1.5
    peak_ratio_mean: float = 0.85
    peak_ratio_amplitude: float = 0.15
    mask_nsigma: float = 4.0
    mask_margin: float = 0.5
    mask_half_height: float | None = None
    # cosmic rays
    cosmic_rate: float = 0.25
    cosmic_streak_fraction: float = 0.4
    cosmic_streak_min: float = 2.0
    cosmic_streak_max: float = 15.0
    cosmic_deposit_median: float = 600.0
    cosmic_deposit_sigma_ln: float = 0.6
    saa_frame_fraction: float = 0.1
    saa_rate_factor: float = 5.0
    # missing pixels
    missing_frame_fraction: float = 0.3
    missing_runs_max: int = 3
    missing_run_min: int = 32
    missing_run_max: int = 1024
    missing_value: float | None = None
    # scattered light and throughput (zero in the presets that do not ask for them)
    scatter_e: float = 0.0
    scatter_sigma: float = 0.3
    scatter_gradient: float = 0.3
    throughput_sigma: float = 0.0
    throughput_min: float = 0.5
    throughput_max: float = 1.3
    # geometry of a cut-out such as WASP-189b's
    trace_separation_min: float = 0.0
    trace_columns: tuple | None = None
    mask_lines: tuple | None = None
    dead_fraction: float = 0.0
    dead_run_min: int = 64
    dead_run_max: int = 512

    def __post_init__(self):
        def need(ok, name, what):
            if not ok:
                raise ValueError(f"simulation parameter '{name}' must be {what}, "
                                 f"got {getattr(self, name)!r}")

        for name in ("n_rows", "n_columns"):
            need(_is_int(getattr(self, name)) and getattr(self, name) >= 8, name, "an integer >= 8")
        need(_is_int(self.n_darks) and self.n_darks >= 2, "n_darks", "an integer >= 2")
        need(_is_int(self.n_science) and self.n_science >= 1, "n_science", "an integer >= 1")
        for name in ("exptime", "cadence", "orbit_period", "pixel_size", "gain", "saturation",
                     "dark_median", "doubling_mean", "glow_scale", "hot_dark_min", "hot_dark_max",
                     "resolution", "star_teff", "peak_signal_e", "trace_sigma_left",
                     "trace_sigma_right", "trace_sigma_ratio", "mask_nsigma",
                     "cosmic_deposit_median", "saa_rate_factor", "wave_min"):
            need(_is_num(getattr(self, name)) and getattr(self, name) > 0, name, "a number > 0")
        for name in ("bias", "read_noise", "dark_sigma_ln", "doubling_sigma", "glow_amplitude",
                     "temp_orbit_amplitude", "temp_drift", "temp_jitter", "trace_separation_max",
                     "trace_separation_power", "peak_ratio_amplitude", "mask_margin",
                     "cosmic_rate", "cosmic_deposit_sigma_ln", "cosmic_streak_min"):
            need(_is_num(getattr(self, name)) and getattr(self, name) >= 0, name, "a number >= 0")
        for name in ("temp_ref", "science_temp_offset", "trace_slope"):
            need(_is_num(getattr(self, name)), name, "a finite number")
        for name in ("hot_fraction", "cosmic_streak_fraction", "saa_frame_fraction",
                     "missing_frame_fraction"):
            need(_is_num(getattr(self, name)) and 0 <= getattr(self, name) <= 1, name, "in [0, 1]")
        need(_is_num(self.transit_depth) and 0 <= self.transit_depth < 1, "transit_depth",
             "in [0, 1)")
        for name in ("wave_max", "hot_dark_max", "cosmic_streak_max", "peak_ratio_mean"):
            need(_is_num(getattr(self, name)), name, "a finite number")
        need(self.wave_max > self.wave_min, "wave_max", "> wave_min")
        need(self.hot_dark_max >= self.hot_dark_min, "hot_dark_max", ">= hot_dark_min")
        need(self.cosmic_streak_max >= self.cosmic_streak_min, "cosmic_streak_max",
             ">= cosmic_streak_min")
        need(self.peak_ratio_mean - self.peak_ratio_amplitude > 0, "peak_ratio_mean",
             "> peak_ratio_amplitude (peak ratio must stay positive)")
        need(_is_int(self.missing_runs_max) and self.missing_runs_max >= 1, "missing_runs_max",
             "an integer >= 1")
        need(_is_int(self.missing_run_min) and self.missing_run_min >= 1, "missing_run_min",
             "an integer >= 1")
        need(_is_int(self.missing_run_max) and self.missing_run_max >= self.missing_run_min,
             "missing_run_max", "an integer >= missing_run_min")
        need(len(self.glow_corner) == 2 and all(_is_num(v) for v in self.glow_corner),
             "glow_corner", "a (row, column) pair of fractions")
        need(all(len(line) == 3 and all(_is_num(v) for v in line) and 0 <= line[1] <= 1
                 and line[2] >= 0 for line in self.absorption_lines),
             "absorption_lines", "a sequence of (centre A, depth in [0, 1], sigma A >= 0)")
        need(self.science_above_darks is None or _is_num(self.science_above_darks),
             "science_above_darks", "None or a number")
        need(self.trace_y0 is None or _is_num(self.trace_y0), "trace_y0", "None or a number")
        for name in ("scatter_e", "scatter_sigma", "scatter_gradient", "throughput_sigma",
                     "trace_separation_min"):
            need(_is_num(getattr(self, name)) and getattr(self, name) >= 0, name, "a number >= 0")
        need(_is_num(self.throughput_min) and _is_num(self.throughput_max)
             and 0 < self.throughput_min <= 1 <= self.throughput_max, "throughput_min",
             "> 0 and <= 1 <= throughput_max")
        need(_is_num(self.dead_fraction) and 0 <= self.dead_fraction < 1, "dead_fraction",
             "in [0, 1)")
        need(_is_int(self.dead_run_min) and 1 <= self.dead_run_min <= self.dead_run_max
             and _is_int(self.dead_run_max), "dead_run_min", "an integer in [1, dead_run_max]")
        need(self.trace_columns is None or (len(self.trace_columns) == 2
                                            and all(_is_int(v) for v in self.trace_columns)
                                            and 0 <= self.trace_columns[0] < self.trace_columns[1]
                                            < self.n_columns),
             "trace_columns", "None or (first, last) columns within the frame")
        need(self.mask_lines is None or (len(self.mask_lines) == 2
                                         and all(len(line) == 2 and all(_is_num(v) for v in line)
                                                 for line in self.mask_lines)),
             "mask_lines", "None or ((y1 at 0, y1 at n_columns), (y2 at 0, y2 at n_columns))")
        need(self.mask_half_height is None or (_is_num(self.mask_half_height)
                                               and self.mask_half_height > 0),
             "mask_half_height", "None or a number > 0")
        need(self.missing_value is None or (_is_num(self.missing_value)
                                            and float(self.missing_value).is_integer()
                                            and -2**31 <= self.missing_value < 2**31),
             "missing_value", "None or an integer (frames are then written as int32)")
        # Normalise sequences to tuples so that the dataclass stays hashable and frozen.
        object.__setattr__(self, "glow_corner", tuple(float(v) for v in self.glow_corner))
        object.__setattr__(self, "absorption_lines",
                           tuple(tuple(float(v) for v in line) for line in self.absorption_lines))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_num(value) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and math.isfinite(value))


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

#: Named parameter sets; see the module docstring for the table of values.
PRESETS: dict[str, SimulationParameters] = {
    "tiny": _TINY,
    "demo": _DEMO,
    "cute": _CUTE,
    "demo_warm": dataclasses.replace(_DEMO, science_above_darks=4.0),
    "cute_warm": dataclasses.replace(_CUTE, science_above_darks=4.0),
    "wasp189b": _WASP189B,
}


# ---------------------------------------------------------------------------
# public entry point
# ---------------------------------------------------------------------------
def simulate(out_dir, preset="demo", seed=None, overwrite=False, **overrides) -> Path:
    """Write a simulated CUTE-like observation with its ground truth.

    Frames are generated and written one at a time, so memory stays at a few
    frame-sized arrays (peak ~200 MB for the ``cute`` preset).  Every file is
    written under a temporary name in its folder and renamed when complete;
    ``config.yaml`` is written last.  The same seed and parameters give
    byte-identical files.

    Parameters
    ----------
    out_dir : str or Path
        Folder to create.  Layout (paths relative to it)::

            darks/dark_0000.fits ...       float32 ADU (int32 if missing_value)
            science/science_0000.fits ...  same; headers IMAGETYP, EXPTIME [s],
                                           CCDTEMP [degC], BUNIT, SIMSEED, SIMPRES
            spectral_mask.fits             uint8, 1 = spectral pixel
            config.yaml                    ready pipeline config
            truth/truth.fits               HOT, DARK_LEVEL [e-/s at temp_ref],
                                           DARK_DOUBLING [degC], FRAMES, SPECTRUM,
                                           PROFILE [ADU]
            truth/science_0000.fits ...    BACKGROUND, SIGNAL, COSMIC [ADU], MISSING
            truth/dark_0000.fits ...       COSMIC [ADU], MISSING

    preset : str or SimulationParameters
        Name in :data:`PRESETS` (``tiny``, ``demo``, ``cute``, ``demo_warm``,
        ``cute_warm``) or a parameter set.
    seed : int or None
        Non-negative random seed; None draws a fresh one.  It is recorded in
        every header as ``SIMSEED``.
    overwrite : bool
        Allow writing into an existing non-empty folder.  Files a previous
        simulation wrote there (frames, truth, mask, config) are removed
        first so no stale frame survives; other files are left alone.
    **overrides
        Replace fields of the preset, e.g. ``n_darks=60`` or
        ``missing_value=0``.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    FileExistsError
        ``out_dir`` exists and is not empty (and ``overwrite`` is False), or
        is a file.
    ValueError
        Unknown preset, invalid parameter value or seed, or a trace and mask
        that do not fit in the frame.
    TypeError
        An override that is not a field of :class:`SimulationParameters`.
    """
    params = _resolve_parameters(preset, overrides)
    preset_name = preset if isinstance(preset, str) else "custom"
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    out = Path(out_dir)
    trace = _trace_model(params)  # validates the geometry before touching the disk
    _prepare_out_dir(out, overwrite)

    # Independent streams per component and per frame: changing the number of
    # frames does not change the detector maps or the other frames.
    ss_detector, ss_temps, ss_darks, ss_science = np.random.SeedSequence(seed).spawn(4)
    detector = _detector_maps(params, np.random.default_rng(ss_detector))
    (t_dark, temp_dark), (t_sci, temp_sci) = _temperatures(params, np.random.default_rng(ss_temps))
    n_sci = params.n_science
    idx = np.arange(n_sci)
    in_transit = (idx >= round(n_sci / 3)) & (idx < round(2 * n_sci / 3))
    # Scattered light, throughput and never-downlinked pixels draw from a stream of their
    # own (the 5th child), so presets without them keep their frames bit for bit.
    extra = _extra_components(params, np.random.default_rng(np.random.SeedSequence(seed).spawn(5)[4]))
    detector["dead"] = extra["dead"]
    flux_scale = np.where(in_transit, 1.0 - params.transit_depth, 1.0) * extra["throughput"]

    meta = {"SIMSEED": (seed, "simulator random seed"),
            "SIMPRES": (preset_name, "simulator preset")}
    for sub in ("darks", "science", "truth"):
        (out / sub).mkdir(parents=True, exist_ok=True)

    rows = []
    frames = [("dark", i, temp_dark[i], t_dark[i], None, False, 1.0, s)
              for i, s in enumerate(ss_darks.spawn(params.n_darks))]
    frames += [("science", i, temp_sci[i], t_sci[i], trace["signal_e"], bool(in_transit[i]),
                float(flux_scale[i]), s) for i, s in enumerate(ss_science.spawn(n_sci))]
    for f, (kind, i, temp, tmid, signal_e, transit, scale, ss) in enumerate(frames):
        name = f"{kind}_{i:04d}.fits"
        frame = _expose(params, detector, temp, signal_e, scale, np.random.default_rng(ss),
                        scatter_e=_scatter_image(params, extra["scatter"][f]))
        header = fits.Header()
        header["IMAGETYP"] = (kind.upper(), "frame type")
        header["EXPTIME"] = (params.exptime, "[s] exposure time")
        header["CCDTEMP"] = (float(temp), "[degC] CCD temperature")
        header["BUNIT"] = ("adu", "pixel unit")
        header["GAIN"] = (params.gain, "[e-/adu] conversion gain")
        header["RDNOISE"] = (params.read_noise, "[e-] read noise")
        header["FRAMENUM"] = (i, "frame number within its type")
        if kind == "science":
            header["MJD-OBS"] = (_MJD_START + (tmid - 0.5 * params.exptime) / 86400.0,
                                 "[d] exposure start, MJD")
        header.update(meta)
        folder = "darks" if kind == "dark" else "science"
        _write_fits(out / folder / name, [fits.PrimaryHDU(frame["data"], header=header)])

        truth_header = fits.Header()
        truth_header["FRAME"] = (f"{folder}/{name}", "frame described")
        truth_header["CCDTEMP"] = (float(temp), "[degC] CCD temperature")
        truth_header["TRANSIT"] = (transit, "frame is in transit")
        truth_header["FLUXSCAL"] = (scale, "flux scale ((1 or 1-depth) x throughput)")
        truth_header["SCATTER"] = (float(extra["scatter"][f][0]),
                                   "[e-] scattered light at the frame centre")
        truth_header["SAA"] = (frame["saa"], "frame taken in the SAA (more cosmic rays)")
        truth_header["NCOSMIC"] = (frame["n_cosmic"], "cosmic-ray hits")
        truth_header.update(meta)
        hdus = [fits.PrimaryHDU(header=truth_header)]
        if kind == "science":
            hdus.append(_image_hdu(frame["background_adu"], "BACKGROUND", "adu",
                                   "expected bias + dark, no noise"))
            hdus.append(_image_hdu(frame["signal_adu"], "SIGNAL", "adu",
                                   "expected spectral signal, no noise"))
        hdus.append(_image_hdu(frame["cosmic_adu"], "COSMIC", "adu", "charge added by cosmic rays"))
        hdus.append(_image_hdu(frame["missing"].astype(np.uint8), "MISSING", "",
                               "1 = pixel lost in downlink"))
        _write_fits(out / "truth" / name, hdus)
        rows.append((name, kind, float(temp), params.exptime, transit, scale, float(tmid),
                     frame["saa"], frame["n_cosmic"],
                     float(extra["throughput"][i]) if kind == "science" else 1.0,
                     float(extra["scatter"][f][0])))

    mask_header = fits.Header()
    mask_header["MASKHALF"] = (trace["half_height"], "[rows] half height about the trace centre")
    mask_header["NSPEC"] = (int(trace["mask"].sum()), "number of spectral pixels")
    mask_header.update(meta)
    _write_fits(out / "spectral_mask.fits",
                [fits.PrimaryHDU(trace["mask"].astype(np.uint8), header=mask_header)])
    changed = [f"{key}={value!r}" for key, value in sorted(overrides.items())]
    truth = _truth_hdus(params, detector, trace, rows, meta)
    for text in changed:
        truth[0].header.add_history(f"override {text}")
    _write_fits(out / "truth" / "truth.fits", truth)
    write_text(out / "config.yaml", _config_text(params, preset_name, seed, changed))
    return out


# ---------------------------------------------------------------------------
# model components
# ---------------------------------------------------------------------------
def _resolve_parameters(preset, overrides) -> SimulationParameters:
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


def _detector_maps(p: SimulationParameters, rng) -> dict:
    """Per-pixel dark level D0 (e-/s at temp_ref), doubling temperature and hot pixels."""
    shape = (p.n_rows, p.n_columns)
    ln_d0 = math.log(p.dark_median) + p.dark_sigma_ln * rng.standard_normal(shape)
    doubling = p.doubling_mean + p.doubling_sigma * rng.standard_normal(shape)
    # A doubling temperature near zero would mean an absurd temperature law.
    doubling = np.maximum(doubling, 0.25 * p.doubling_mean)
    # Smooth multiplicative glow towards one corner: the background is not flat.
    y, x = np.ogrid[:p.n_rows, :p.n_columns]
    cy, cx = p.glow_corner[0] * (p.n_rows - 1), p.glow_corner[1] * (p.n_columns - 1)
    diag = math.hypot(p.n_rows, p.n_columns)
    dist = np.hypot(y - cy, x - cx)
    ln_d0 += np.log1p(p.glow_amplitude * np.exp(-dist / (p.glow_scale * diag)))
    n_pix = p.n_rows * p.n_columns
    hot = np.zeros(n_pix, bool)
    n_hot = int(round(p.hot_fraction * n_pix))
    hot_idx = rng.choice(n_pix, size=n_hot, replace=False)
    hot[hot_idx] = True
    ln_d0 = ln_d0.ravel()
    ln_d0[hot_idx] = rng.uniform(math.log(p.hot_dark_min), math.log(p.hot_dark_max), n_hot)
    return {"ln_d0": ln_d0.reshape(shape), "doubling": doubling,
            "inv_doubling": 1.0 / doubling, "hot": hot.reshape(shape)}


def _temperatures(p: SimulationParameters, rng):
    """Mid-exposure times (s from block start) and CCD temperatures (degC) of darks and science.

    Each block is a run of exposures every ``cadence`` s starting at a random
    orbital phase; temperatures are rounded to 1 mdegC, as a sensor would
    report them, and the rounded value is the one used for the dark current.
    """
    def block(n, mean):
        t = np.arange(n) * p.cadence + 0.5 * p.exptime
        phase = rng.uniform(0.0, 2.0 * math.pi)
        drift = rng.uniform(-1.0, 1.0) * p.temp_drift
        ramp = (t - t[0]) / (t[-1] - t[0]) - 0.5 if n > 1 else np.zeros(n)
        temps = (mean + p.temp_orbit_amplitude * np.sin(2.0 * math.pi * t / p.orbit_period + phase)
                 + drift * ramp + p.temp_jitter * rng.standard_normal(n))
        return t, temps

    t_dark, temp_dark = block(p.n_darks, p.temp_ref)
    t_sci, temp_sci = block(p.n_science, p.temp_ref + p.science_temp_offset)
    temp_dark, temp_sci = np.round(temp_dark, 3), np.round(temp_sci, 3)
    if p.science_above_darks is not None:
        # Shift rounded up to 1 mdegC so the bound holds for the rounded values too.
        shift = math.ceil((temp_dark.max() + p.science_above_darks - temp_sci.min()) * 1e3) / 1e3
        temp_sci = np.round(temp_sci + shift, 3)
    return (t_dark, temp_dark), (t_sci, temp_sci)


def _spectrum(p: SimulationParameters):
    """Wavelength (A) per column and relative photon continuum with absorption lines."""
    u = np.arange(p.n_columns) / (p.n_columns - 1)
    wave = p.wave_min + (p.wave_max - p.wave_min) * u
    # Photon-counting Planck law: B_lambda / (hc/lambda) ~ lambda^-4 / (exp(c2/lambda T) - 1).
    flux = (wave / p.wave_min) ** -4 / np.expm1(_C2_ANGSTROM_K / (wave * p.star_teff))
    inst_sigma = p.resolution * _FWHM_TO_SIGMA
    for centre, depth, sigma in p.absorption_lines:  # a handful of lines
        s = math.hypot(sigma, inst_sigma)
        flux *= 1.0 - depth * np.exp(-0.5 * ((wave - centre) / s) ** 2)
    return wave, flux / flux.max()


def _trace_model(p: SimulationParameters) -> dict:
    """Trace geometry, expected signal image (e-, out of transit) and spectral mask."""
    nx, ny = p.n_columns, p.n_rows
    x = np.arange(nx, dtype=float)
    u = x / (nx - 1)
    y0 = (ny - 1) / 2 - p.trace_slope * (nx - 1) / 2 if p.trace_y0 is None else p.trace_y0
    center = y0 + p.trace_slope * x
    sep = (p.trace_separation_min
           + (p.trace_separation_max - p.trace_separation_min) * u ** p.trace_separation_power)
    mu1, mu2 = center - sep / 2, center + sep / 2
    sig1 = p.trace_sigma_left + (p.trace_sigma_right - p.trace_sigma_left) * u
    sig2 = sig1 * p.trace_sigma_ratio
    ratio = p.peak_ratio_mean + p.peak_ratio_amplitude * np.sin(1.5 * math.pi * u)
    # Amplitudes per unit column flux: integral of the profile over y is 1.
    a1 = 1.0 / (math.sqrt(2 * math.pi) * (sig1 + ratio * sig2))
    a2 = ratio * a1
    yy = np.arange(ny, dtype=float)[:, None]
    unit = (a1 * np.exp(-0.5 * ((yy - mu1) / sig1) ** 2)
            + a2 * np.exp(-0.5 * ((yy - mu2) / sig2) ** 2))
    wave, continuum = _spectrum(p)
    shape = unit * continuum
    on_trace = np.ones(nx, bool)
    if p.trace_columns is not None:
        on_trace = (x >= p.trace_columns[0]) & (x <= p.trace_columns[1])
        shape = shape * on_trace
    norm = p.peak_signal_e / shape.max()
    if p.mask_half_height is None:
        half = p.mask_nsigma * max(sig1.max(), sig2.max()) + sep.max() / 2 + p.mask_margin
    else:
        half = float(p.mask_half_height)
    if center.min() - half < 0 or center.max() + half > ny - 1:
        raise ValueError(
            f"trace (rows {center.min():.1f}-{center.max():.1f}) with mask half height "
            f"{half:.1f} does not fit in {ny} rows; change n_rows, trace_y0, trace_slope "
            f"or the trace widths")
    mask = np.abs(yy - center) <= half
    if p.mask_lines is not None:
        (lo0, lo1), (hi0, hi1) = p.mask_lines
        mask = (yy >= lo0 + (lo1 - lo0) * x / nx) & (yy <= hi0 + (hi1 - hi0) * x / nx)
    mask &= on_trace
    signal_e = shape * norm
    return {"center": center, "mu1": mu1, "mu2": mu2, "sig1": sig1, "sig2": sig2,
            "amp1_e": a1 * continuum * norm * on_trace, "amp2_e": a2 * continuum * norm * on_trace,
            "wave": wave, "signal_e": signal_e, "flux_e": signal_e.sum(axis=0),
            "mask": mask, "half_height": float(half)}


def _expose(p: SimulationParameters, det: dict, temp, signal_e, scale, rng, scatter_e=None) -> dict:
    """One frame: noisy data (ADU) plus its truth components.

    Random draws happen in a fixed order (SAA flag, missing runs, cosmic rays,
    Poisson, read noise) so a seed always gives the same frame.  ``scatter_e``
    (scattered light, e-) joins the dark current in the true background.
    """
    shape = (p.n_rows, p.n_columns)
    dark_e = np.exp(det["ln_d0"] + _LN2 * (temp - p.temp_ref) * det["inv_doubling"]) * p.exptime
    if scatter_e is not None:
        dark_e = dark_e + scatter_e
    expected_e = dark_e if signal_e is None else dark_e + scale * signal_e
    saa = bool(rng.random() < p.saa_frame_fraction)
    missing = _missing_pixels(p, rng)
    if det.get("dead") is not None:
        missing |= det["dead"]
    cosmic_e, n_cosmic = _cosmic_rays(p, rng, p.saa_rate_factor if saa else 1.0)
    electrons = rng.poisson(expected_e).astype(np.float64)
    electrons += cosmic_e
    electrons += p.read_noise * rng.standard_normal(shape)
    adu = np.clip(np.rint(electrons / p.gain + p.bias), 0.0, p.saturation)
    if p.missing_value is None:
        data = adu.astype(np.float32)
        data[missing] = np.nan
    else:
        sentinel = int(p.missing_value)
        data = adu.astype(np.int32)
        # A real reading equal to the sentinel would be read back as missing:
        # nudge it by one ADU towards the bias.
        clash = (data == sentinel) & ~missing
        data[clash] += 1 if sentinel < p.bias else -1
        data[missing] = sentinel
    out = {"data": data, "missing": missing, "saa": saa, "n_cosmic": n_cosmic,
           "cosmic_adu": (cosmic_e / p.gain).astype(np.float32)}
    if signal_e is not None:
        out["background_adu"] = (p.bias + dark_e / p.gain).astype(np.float32)
        out["signal_adu"] = (scale * signal_e / p.gain).astype(np.float32)
    return out


def _extra_components(p: SimulationParameters, rng) -> dict:
    """Per-frame scattered light (level e-, column and row gradients; darks then science),
    per-science-frame throughput and the never-downlinked pixels, from their own stream."""
    n_frames = p.n_darks + p.n_science
    level = p.scatter_e * np.exp(p.scatter_sigma * rng.standard_normal(n_frames)
                                 - 0.5 * p.scatter_sigma ** 2)
    grad = p.scatter_gradient * rng.standard_normal((n_frames, 2))
    throughput = np.clip(1.0 + p.throughput_sigma * rng.standard_normal(p.n_science),
                         p.throughput_min, p.throughput_max)
    dead = None
    if p.dead_fraction > 0:
        n_pix = p.n_rows * p.n_columns
        flat = np.zeros(n_pix, bool)
        while flat.mean() < p.dead_fraction:
            start = int(rng.integers(0, n_pix))
            flat[start:start + int(rng.integers(p.dead_run_min, p.dead_run_max + 1))] = True
        dead = flat.reshape(p.n_rows, p.n_columns)
    return {"scatter": np.column_stack([level, grad]), "throughput": throughput, "dead": dead}


def _scatter_image(p: SimulationParameters, frame_scatter):
    """Smooth scattered light of one frame (e-): level x (1 + column and row gradients), or None."""
    level, gx, gy = frame_scatter
    if level == 0:
        return None
    u = np.arange(p.n_columns) / (p.n_columns - 1) - 0.5
    v = np.arange(p.n_rows)[:, None] / (p.n_rows - 1) - 0.5
    return level * np.clip(1.0 + gx * u + gy * v, 0.0, None)


def _missing_pixels(p: SimulationParameters, rng) -> np.ndarray:
    """Bool image of pixels lost with downlink packets: row-major runs, may wrap rows."""
    n_pix = p.n_rows * p.n_columns
    if rng.random() >= p.missing_frame_fraction:
        return np.zeros((p.n_rows, p.n_columns), bool)
    n_runs = int(rng.integers(1, p.missing_runs_max + 1))
    starts = rng.integers(0, n_pix, n_runs)
    lengths = rng.integers(p.missing_run_min, p.missing_run_max + 1, n_runs)
    # Difference array: +1 at each run start, -1 after its end; cumsum > 0 inside runs.
    edges = np.zeros(n_pix + 1, np.int32)
    np.add.at(edges, starts, 1)
    np.add.at(edges, np.minimum(starts + lengths, n_pix), -1)
    return (np.cumsum(edges[:-1]) > 0).reshape(p.n_rows, p.n_columns)


def _cosmic_rays(p: SimulationParameters, rng, rate_factor: float):
    """Cosmic-ray charge image (e-) and number of hits.

    Each hit is a segment (length 0 for point-like hits) sampled twice per
    pixel of length; every sample's charge is shared bilinearly among the four
    pixels around it, mimicking charge diffusion and anti-aliasing the track.
    """
    ny, nx = p.n_rows, p.n_columns
    area_cm2 = ny * nx * (p.pixel_size * 1e-4) ** 2
    n = int(rng.poisson(p.cosmic_rate * rate_factor * area_cm2 * p.exptime))
    image = np.zeros(ny * nx)
    if n == 0:
        return image.reshape(ny, nx), 0
    # Pixel centres are at integer coordinates; hits land anywhere on the detector.
    yc = rng.uniform(-0.5, ny - 0.5, n)
    xc = rng.uniform(-0.5, nx - 0.5, n)
    streak = rng.random(n) < p.cosmic_streak_fraction
    length = np.where(streak, rng.uniform(p.cosmic_streak_min, p.cosmic_streak_max, n), 0.0)
    angle = rng.uniform(0.0, math.pi, n)
    per_pixel = rng.lognormal(math.log(p.cosmic_deposit_median), p.cosmic_deposit_sigma_ln, n)
    total = per_pixel * np.maximum(length, 1.0)
    m = np.ceil(2.0 * length).astype(np.int64) + 1
    hit = np.repeat(np.arange(n), m)
    k = np.arange(m.sum()) - np.repeat(np.cumsum(m) - m, m)
    t = np.where(m[hit] > 1, k / np.maximum(m[hit] - 1, 1) - 0.5, 0.0)
    ys = yc[hit] + t * length[hit] * np.sin(angle[hit])
    xs = xc[hit] + t * length[hit] * np.cos(angle[hit])
    w = total[hit] / m[hit]
    fy, fx = np.floor(ys), np.floor(xs)
    dy, dx = ys - fy, xs - fx
    rr = np.concatenate([fy, fy, fy + 1, fy + 1]).astype(np.int64)
    cc = np.concatenate([fx, fx + 1, fx, fx + 1]).astype(np.int64)
    ww = np.concatenate([w * (1 - dy) * (1 - dx), w * (1 - dy) * dx,
                         w * dy * (1 - dx), w * dy * dx])
    inside = (rr >= 0) & (rr < ny) & (cc >= 0) & (cc < nx)
    image += np.bincount(rr[inside] * nx + cc[inside], weights=ww[inside], minlength=ny * nx)
    return image.reshape(ny, nx), n


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------
_OWN_PATTERNS = ("darks/dark_*.fits", "science/science_*.fits", "truth/*.fits",
                 "spectral_mask.fits", "config.yaml", "**/.*.part")


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Create ``out``; refuse a non-empty one unless overwriting (then drop our old files)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out}: folder exists and is not empty; pass --overwrite "
                "(overwrite=True from Python) to replace the simulator's files in it")
        for pattern in _OWN_PATTERNS:
            for path in out.glob(pattern):
                if path.is_file():
                    path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _image_hdu(data, extname, bunit, comment) -> fits.ImageHDU:
    hdu = fits.ImageHDU(data, name=extname)
    if bunit:
        hdu.header["BUNIT"] = (bunit, comment)
    else:
        hdu.header["COMMENT"] = comment
    return hdu


def _truth_hdus(p, detector, trace, rows, meta) -> list:
    """HDUs of truth/truth.fits: detector maps, per-frame table, spectrum, profile."""
    header = fits.Header()
    header["GAIN"] = (p.gain, "[e-/adu] conversion gain")
    header["RDNOISE"] = (p.read_noise, "[e-] read noise")
    header["BIAS"] = (p.bias, "[adu] bias level")
    header["EXPTIME"] = (p.exptime, "[s] exposure time")
    header["DEPTH"] = (p.transit_depth, "fractional transit depth")
    header["TREF"] = (p.temp_ref, "[degC] temperature at which dark = DARK_LEVEL")
    header["SATURATE"] = (p.saturation, "[adu] largest recorded value")
    header["MASKHALF"] = (trace["half_height"], "[rows] spectral mask half height")
    header["NSPEC"] = (int(trace["mask"].sum()), "number of spectral pixels")
    header["NHOT"] = (int(detector["hot"].sum()), "number of hot pixels")
    header["MISSVAL"] = ("NaN" if p.missing_value is None else int(p.missing_value),
                         "marker of missing pixels in the frames")
    header.update(meta)
    header["COMMENT"] = "dark current [e-/s] = DARK_LEVEL * 2**((CCDTEMP - TREF) / DARK_DOUBLING)"
    names, kinds, temps, exps, transit, scale, tmid, saa, ncr, thru, scatter = zip(*rows)
    frames = fits.BinTableHDU.from_columns([
        fits.Column("NAME", "24A", array=np.array(names)),
        fits.Column("KIND", "7A", array=np.array(kinds)),
        fits.Column("CCDTEMP", "D", unit="degC", array=np.array(temps)),
        fits.Column("EXPTIME", "D", unit="s", array=np.array(exps)),
        fits.Column("TRANSIT", "L", array=np.array(transit)),
        fits.Column("FLUX_SCALE", "D", array=np.array(scale)),
        fits.Column("TIME", "D", unit="s", array=np.array(tmid)),
        fits.Column("SAA", "L", array=np.array(saa)),
        fits.Column("NCOSMIC", "J", array=np.array(ncr, dtype=np.int32)),
        fits.Column("THROUGHPUT", "D", array=np.array(thru)),
        fits.Column("SCATTER", "D", unit="electron", array=np.array(scatter)),
    ], name="FRAMES")
    columns = np.arange(p.n_columns, dtype=np.int32)
    spectrum = fits.BinTableHDU.from_columns([
        fits.Column("COLUMN", "J", array=columns),
        fits.Column("WAVE", "D", unit="Angstrom", array=trace["wave"]),
        fits.Column("FLUX_E", "D", unit="electron", array=trace["flux_e"]),
    ], name="SPECTRUM")
    profile = fits.BinTableHDU.from_columns([
        fits.Column("COLUMN", "J", array=columns),
        fits.Column("CENTER", "D", unit="pix", array=trace["center"]),
        fits.Column("AMP1", "D", unit="adu", array=trace["amp1_e"] / p.gain),
        fits.Column("MU1", "D", unit="pix", array=trace["mu1"]),
        fits.Column("SIG1", "D", unit="pix", array=trace["sig1"]),
        fits.Column("AMP2", "D", unit="adu", array=trace["amp2_e"] / p.gain),
        fits.Column("MU2", "D", unit="pix", array=trace["mu2"]),
        fits.Column("SIG2", "D", unit="pix", array=trace["sig2"]),
    ], name="PROFILE")
    return [fits.PrimaryHDU(header=header),
            _image_hdu(detector["hot"].astype(np.uint8), "HOT", "", "1 = hot pixel"),
            _image_hdu(np.exp(detector["ln_d0"]).astype(np.float32), "DARK_LEVEL", "electron/s",
                       "dark current at TREF"),
            _image_hdu(detector["doubling"].astype(np.float32), "DARK_DOUBLING", "degC",
                       "doubling temperature"),
            frames, spectrum, profile,
            _image_hdu((np.zeros(detector["hot"].shape, bool) if detector.get("dead") is None
                        else detector["dead"]).astype(np.uint8), "DEAD", "",
                       "1 = pixel never downlinked (missing in every frame)")]


def _config_text(p: SimulationParameters, preset_name: str, seed: int, changed) -> str:
    lines = [
        "# Pipeline configuration written by proxy_pixel_pipeline.simulate",
        f"# (preset {preset_name}, seed {seed}). Paths are relative to this file's folder.",
        *(f"# simulation override: {text}" for text in changed),
        "dark_frames: darks/dark_*.fits",
        "science_frames: science/science_*.fits",
        "spectral_mask: spectral_mask.fits",
        "output_dir: output",
        "proxy_method: median",
        f"gain: {p.gain!r}          # e-/ADU",
        f"read_noise: {p.read_noise!r}    # e-",
    ]
    if p.missing_value is not None:
        lines.append(f"missing_value: {int(p.missing_value)}    # marks pixels lost in downlink")
    lines += _spectra_config(p)
    return "\n".join(lines) + "\n"


def _spectra_config(p: SimulationParameters) -> list:
    """Stage 6's keys for the simulated data: its wavelength solution and transit window.

    Frames ``round(n/3)`` to ``round(2n/3) - 1`` are in transit; the window
    ends half a cadence beyond the first and last of them (mid-exposure MJD).
    """
    per_column = (p.wave_max - p.wave_min) / (p.n_columns - 1)
    lines = [f"wavelength_solution: [{p.wave_min!r}, {per_column!r}]    # A, of the column"]
    first, stop = round(p.n_science / 3), round(2 * p.n_science / 3)
    if stop > first and stop - first < p.n_science:
        mid = _MJD_START + (0.5 * (first + stop - 1) * p.cadence + 0.5 * p.exptime) / 86400.0
        lines += ["transit_model: box",
                  f"transit_mid: {mid!r}    # MJD, mid-exposure of the in-transit frames' middle",
                  f"transit_duration: {(stop - first) * p.cadence / 86400.0!r}    # days"]
    return lines


def _write_fits(path: Path, hdus) -> None:
    """Write an HDU list to a temporary file in the same folder, then rename it."""
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp, overwrite=True, output_verify="exception")
