"""The parameters of a simulated observation: :class:`SimulationParameters`.

Every physical quantity the simulator uses is a field here, with its unit and
its source (*[CUTE]* or *[approx.]*, see the package docstring); the values
are checked when a parameter set is made (:mod:`.validation`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .validation import check_parameters

__all__ = ["SimulationParameters", "MJD_START"]

#: MJD of the first science exposure's start (science headers' ``MJD-OBS``).
MJD_START = 60310.0


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
        Frame-to-frame rms of a throughput factor drawn independently for
        each science frame, clipped to [throughput_min, throughput_max]; no
        fit can model it (nothing observable goes with it), so no preset uses
        it any more: ``wasp189b`` has the systematics below instead; 0 =
        constant.
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

    Systematics a light-curve fit can model (all off by default; see
    :mod:`.systematics`).  A *visit* is one data set; ``simulate(...,
    visits=N)`` writes N of them, each with its own draws of everything below
    marked *per visit*.

    orbit_visible_fraction : float
        Science frames only in the first this fraction of every orbit
        (``orbit_period``), one every ``cadence`` s, the rest of the orbit a
        gap (Earth occultation); 0 = one frame every ``cadence`` s without
        gaps [approx.; wasp189b: 0.5, 8 frames per ~96-min orbit].
    transit_offset_max : float
        Mid-transit time within +-this many s of the visit's middle, uniform,
        per visit (so the orbit windows fall differently on the transit),
        e.g. 2880 s [approx.].
    visit_spacing : int
        Planet periods from one visit's transit to the next's, e.g. 1.
    planet_period : float or None
        Orbital period, days; set, the transit is a limb-darkened batman
        model (Kreidberg 2015) with baseline Rp/R* = sqrt(transit_depth) and
        the lines of ``planet_lines``, written to the config as
        ``transit_model: batman``; None = the box transit of the middle third
        of the science frames [WASP-189b: 2.7240330 d, Lendl et al. 2020].
    planet_a_rs : float or None
        Semi-major axis over stellar radius [WASP-189b: 4.60].
    planet_inclination : float or None
        Orbital inclination, degrees [WASP-189b: 84.03].
    limb_darkening : tuple of float
        Limb-darkening coefficients: () uniform, 1 linear, 2 quadratic, 4
        nonlinear [approx.; wasp189b: (0.40, 0.25) in the NUV].
    planet_lines : tuple of (float, float, float)
        Transmission spectrum: ``Rp/R*(lambda) = sqrt(transit_depth) + sum
        extra * exp(-0.5 ((lambda - centre) / sigma)**2)`` over lines given as
        (centre A, extra Rp/R*, sigma A as seen by the detector) [wasp189b:
        Mg II 2796.35 and 2803.53 A, extra 0.14, sigma 2 A: Rp/R* ~0.21 in a
        13 A band (Sreejith et al. 2023); Fe II 2586.65 and 2600.17 A, 0.04,
        1.5 A; Fe II 2382.77 A lies below CUTE's band].
    visit_trace_shift : float
        The trace and the spectral mask of each visit move by a uniform draw
        in +-this many rows (the mask by the rounded value), per visit
        [CUTE: 3-5 rows from visit to visit; wasp189b: 2.5].
    pointing_offset_sigma : float
        Frame-to-frame rms of the trace's offset across rows about the
        visit's position, rows [approx.; wasp189b: 0.4].
    pointing_drift : float
        Largest linear drift of that offset over a visit, rows (uniform in
        +-this from the visit's middle to its ends, per visit) [approx.;
        wasp189b: 1.0].
    jitter_median : float
        Median over frames of the pointing jitter during an exposure, arcsec
        rms (log-normal over frames); science headers' ``JITTER``; it smears
        the trace by a Gaussian of ``JITTER / plate_scale`` rows; 0 = no
        smear [CUTE: <= 6 arcsec in 56 % of exposures (Egan et al. 2023);
        wasp189b: 4].
    jitter_sigma_ln : float
        Spread of ln(jitter) over frames, e.g. 0.45 [approx.].
    plate_scale : float
        Arcsec per row along the slit, e.g. 2.5 [approx.; not from a CUTE
        document].
    slit_loss : float
        Fraction of light lost at the slit edge per row squared of offset
        and smear: the signal is scaled by ``1 - slit_loss (offset**2 +
        smear**2)`` [approx.; wasp189b: 0.001, ~0.3 % at the median jitter,
        a few % in the worst frames].
    ramp_amplitude : float
        Throughput deficit at the start of every orbit window, settling as
        ``1 - A exp(-(time since the window's start) / ramp_tau)``, A drawn
        per visit around this [approx.; wasp189b: 0.01].
    ramp_tau : float
        e-folding time of the ramp, s, e.g. 900 [approx.].
    ramp_shape : str
        ``"exponential"`` (the settling above) or ``"phase_cubic"``: a
        thermal cycle cubic in the orbit's phase within the window,
        ``1 - A sum_k b_k (2 x - 1)**k`` (k = 1 .. 3, ``x`` the time since
        the window's start over its length, ``b_k`` standard normal per
        visit), as CUTE's own data simulator models the throughput; the
        same amplitude, first-orbit factor and spread apply.
    ramp_first_orbit : float
        The ramp of a visit's first orbit window is this many times deeper,
        e.g. 3 [approx.; the first orbit of a visit settles most].
    ramp_spread : float
        rms of ln(A / ramp_amplitude) from visit to visit, e.g. 0.3.
    drift_amplitude : float
        Slow throughput drift over a visit: ``1 + sum_k c_k u**k`` with
        ``u`` the time from the visit's middle scaled to [-1, 1] and each
        ``c_k`` (k = 1 .. drift_order) normal with this rms, per visit
        [approx.; wasp189b: 0.004].
    drift_order : int
        Degree of that polynomial, e.g. 2.
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
    # systematics a fit can model, several visits, a transmission spectrum (all off by default)
    orbit_visible_fraction: float = 0.0
    transit_offset_max: float = 0.0
    visit_spacing: int = 1
    planet_period: float | None = None
    planet_a_rs: float | None = None
    planet_inclination: float | None = None
    limb_darkening: tuple = ()
    planet_lines: tuple = ()
    visit_trace_shift: float = 0.0
    pointing_offset_sigma: float = 0.0
    pointing_drift: float = 0.0
    jitter_median: float = 0.0
    jitter_sigma_ln: float = 0.45
    plate_scale: float = 2.5
    slit_loss: float = 0.0
    ramp_amplitude: float = 0.0
    ramp_tau: float = 900.0
    ramp_shape: str = "exponential"
    ramp_first_orbit: float = 3.0
    ramp_spread: float = 0.3
    drift_amplitude: float = 0.0
    drift_order: int = 2

    def __post_init__(self):
        check_parameters(self)
        # Normalise sequences to tuples so that the dataclass stays hashable and frozen.
        object.__setattr__(self, "glow_corner", tuple(float(v) for v in self.glow_corner))
        object.__setattr__(self, "absorption_lines",
                           tuple(tuple(float(v) for v in line) for line in self.absorption_lines))
        object.__setattr__(self, "limb_darkening", tuple(float(v) for v in self.limb_darkening))
        object.__setattr__(self, "planet_lines",
                           tuple(tuple(float(v) for v in line) for line in self.planet_lines))

    @property
    def systematics(self) -> bool:
        """Any of the fit-modelable systematics, or a batman transit, is on."""
        return bool(self.orbit_visible_fraction or self.planet_period is not None
                    or self.visit_trace_shift or self.pointing_offset_sigma
                    or self.pointing_drift or self.jitter_median or self.slit_loss
                    or self.ramp_amplitude or self.drift_amplitude)


