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

Systematics a fit can model, visits, a transmission spectrum
-------------------------------------------------------------
Off by default (the presets above are unchanged by them); ``wasp189b`` and
``kelt9b`` use all of them (:mod:`.systematics`, :mod:`.transit`).  Science
frames come in orbit windows (part of every ~96-min orbit, gaps between);
each frame's pointing moves the trace across rows and smears it (``JITTER``
in the header), losing light at the slit edge; the throughput settles in
every window (an exponential ramp, deeper in the visit's first orbit) and
drifts slowly over the visit; the CCD temperature follows the orbit.  The
transit is a limb-darkened batman model of a transmission spectrum (Rp/R*
per column: a baseline plus Mg II and Fe II lines) with the planet's
period, a/R* and inclination written to the config.  ``simulate(...,
visits=N)`` writes N visits of the planet on one ephemeris, each with its own
draws.  Every factor is in the truth (``SYSTEMATICS`` and ``TRANSMISSION``
tables, :func:`.truth.systematics_hdus`); nothing unobservable changes from
frame to frame.

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

``wasp189b`` is CUTE's WASP-189b visit 5 (100 x 2048 cut-out, 134 darks, 61
science frames in 8 orbit windows of 8 exposures, the original pipeline's
mask, integer ADU with lost pixels, scattered light, -6 to -12 degC) with
WASP-189b's transit (depth 1.08 %, Mg II Rp/R* ~0.21) and the systematics
above; ``kelt9b`` the same detector with a KELT-9b-like planet and other
systematics (held-out data for checks): see :mod:`.presets`.

Output layout
-------------
See :func:`simulate`.

Modules
-------
:mod:`.parameters` (:class:`SimulationParameters`; its checks in
:mod:`.validation`), :mod:`.presets` (:data:`PRESETS`), :mod:`.trace`
(spectrum, trace and mask), :mod:`.detector` (dark-current maps,
temperatures, scattered light, missing pixels, cosmic rays, the exposure),
:mod:`.systematics` (orbit windows, pointing, throughput), :mod:`.transit`
(transmission spectrum, batman light curves), :mod:`.visit` (one visit's
files, random streams), :mod:`.truth` (truth files) and :mod:`.writers`
(folder, FITS files, headers, ``config.yaml`` through
:func:`~proxy_pixel_pipeline.runtime.settings.render_config`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .detector import detector_maps, extra_components, temperatures
from .parameters import SimulationParameters
from .presets import PRESETS, parse_overrides, resolve_parameters
from .trace import trace_model
from .validation import is_int
from .visit import write_visit
from .writers import prepare_out_dir

__all__ = ["SimulationParameters", "PRESETS", "simulate", "parse_overrides"]

# The model's parts under the names the tests and benchmarks use.
_trace_model = trace_model
_temperatures = temperatures
_extra_components = extra_components


def simulate(out_dir, preset="demo", seed=None, overwrite=False, visits=None, **overrides) -> Path:
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
                                           CCDTEMP [degC], BUNIT, SIMSEED, SIMPRES,
                                           MJD-OBS [d], JITTER [arcsec] (jitter_median > 0)
            spectral_mask.fits             uint8, 1 = spectral pixel
            config.yaml                    ready pipeline config
            truth/truth.fits               HOT, DARK_LEVEL [e-/s at temp_ref],
                                           DARK_DOUBLING [degC], FRAMES, SPECTRUM,
                                           PROFILE [ADU], DEAD; with systematics
                                           also SYSTEMATICS and TRANSMISSION
                                           (:func:`.truth.systematics_hdus`)
            truth/science_0000.fits ...    BACKGROUND, SIGNAL, COSMIC [ADU], MISSING
            truth/dark_0000.fits ...       COSMIC [ADU], MISSING

        With ``visits`` this layout is repeated in ``visit1/``, ``visit2/``, ...

    preset : str or SimulationParameters
        Name in :data:`PRESETS` (``tiny``, ``demo``, ``cute``, ``demo_warm``,
        ``cute_warm``, ``wasp189b``, ``kelt9b``) or a parameter set.
    seed : int or None
        Non-negative random seed; None draws a fresh one.  It is recorded in
        every header as ``SIMSEED``.
    overwrite : bool
        Allow writing into an existing non-empty folder.  Files a previous
        simulation wrote there (frames, truth, mask, config, in visit
        folders too) are removed first so no stale frame survives; other
        files are left alone.
    visits : int or None
        None: one data set in ``out_dir``.  N >= 1: N visits of the same
        planet, ``visit1/`` ... ``visitN/``, each a complete data set with its
        own config (its ``transit_mid`` on the one ephemeris: the transits
        are ``visit_spacing`` periods apart), its own darks, temperatures,
        trace position and systematics, on the same detector (hot pixels,
        dark-current maps).  ``visit1/`` holds the frames a single data set
        of the same seed holds.  Needs ``planet_period`` when N > 1.
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
        Unknown preset, invalid parameter value, seed or number of visits,
        or a trace and mask that do not fit in the frame.
    TypeError
        An override that is not a field of :class:`SimulationParameters`.
    """
    params = resolve_parameters(preset, overrides)
    preset_name = preset if isinstance(preset, str) else "custom"
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if visits is not None and (not is_int(visits) or visits < 1):
        raise ValueError(f"visits must be None or an integer >= 1, got {visits!r}")
    if visits is not None and visits > 1 and params.planet_period is None:
        raise ValueError("several visits need a planet on an ephemeris: set planet_period "
                         f"(preset {preset_name!r} has none)")
    seed = int(seed)
    out = Path(out_dir)
    # Validate the geometry (the extreme trace shifts of the visits too) before touching the disk.
    for shift in {0.0, params.visit_trace_shift, -params.visit_trace_shift}:
        trace_model(params, shift)
    prepare_out_dir(out, overwrite)

    # The detector maps: one CCD for every visit (the seed's child 0).
    detector = detector_maps(params, np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]))
    changed = [f"{key}={value!r}" for key, value in sorted(overrides.items())]
    meta = {"SIMSEED": (seed, "simulator random seed"),
            "SIMPRES": (preset_name, "simulator preset")}
    for visit in range(1, (visits or 1) + 1):
        folder = out if visits is None else out / f"visit{visit}"
        for sub in ("darks", "science", "truth"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        visit_meta = meta if visits is None else {**meta, "VISIT": (visit, "visit number")}
        write_visit(folder, params, seed, visit, detector, visit_meta, (preset_name, changed))
    return out
