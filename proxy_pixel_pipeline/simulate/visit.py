"""One visit: its frames, truth, spectral mask and config.yaml, written into one folder.

Random streams (``numpy.random.SeedSequence``): the detector maps are child 0
of the seed, shared by every visit (one CCD); visit 1 takes children 1-5 of
the seed (temperatures, darks, science frames, scattered light and lost
pixels, systematics), so a single data set and ``visit1/`` of the same seed
hold the same frames; visit *k* > 1 takes children 1-5 of the seed's child
``100 + k``.  Within a stream every frame has its own child, so changing the
number of frames leaves the others unchanged.
"""

from __future__ import annotations

import math

import numpy as np
from astropy.io import fits

from ..io.atomic import write_text
from .detector import expose, extra_components, scatter_image, temperatures
from .parameters import MJD_START, SimulationParameters
from .systematics import science_times, visit_systematics
from .trace import frame_signal, trace_model
from .transit import light_curves, rp_rs, total_duration
from .truth import frame_truth_hdus, systematics_hdus, truth_hdus, visit_cards
from .writers import config_text, frame_header, write_fits

__all__ = ["write_visit", "visit_streams"]


def visit_streams(seed: int, visit: int) -> list:
    """Seed sequences of a visit: temperatures, darks, science, extra components, systematics."""
    if visit == 1:
        root = np.random.SeedSequence(seed)
    else:
        root = np.random.SeedSequence(seed, spawn_key=(100 + visit,))
    return root.spawn(6)[1:]


def write_visit(out, p: SimulationParameters, seed, visit, detector, meta, comments) -> None:
    """Simulate one visit and write it into ``out`` (which exists, with ``darks/``,
    ``science/`` and ``truth/``).

    Parameters
    ----------
    out : Path
        The visit's folder.
    p : SimulationParameters
    seed : int
    visit : int
        1-based visit number (its random streams and, with a planet, its
        transit: ``visit_spacing x (visit - 1)`` periods after the first).
    detector : dict
        :func:`~.detector.detector_maps` (shared by the visits).
    meta : dict
        Header cards of every file (seed, preset, visit).
    comments : tuple
        ``(preset name, override texts)`` for the config and truth.
    """
    preset_name, changed = comments
    ss_temps, ss_darks, ss_science, ss_extra, ss_sys = visit_streams(seed, visit)
    times = science_times(p) if p.systematics else None
    (t_dark, temp_dark), (t_sci, temp_sci) = temperatures(
        p, np.random.default_rng(ss_temps), None if times is None else times["time"])
    # Scattered light, throughput and never-downlinked pixels draw from a stream of their
    # own, so presets without them keep their frames bit for bit.
    extra = extra_components(p, np.random.default_rng(ss_extra))
    detector = {**detector, "dead": extra["dead"]}
    n_sci = p.n_science
    if p.systematics:
        sysm = visit_systematics(p, times, np.random.default_rng(ss_sys))
        trace = trace_model(p, sysm["trace_shift"])
        model = _transit_model(p, visit, times, sysm, trace)
        throughput = sysm["throughput"] * extra["throughput"]
        flux_scale = model["white"] * throughput * sysm["slit"]
        in_transit = model["in_transit"]
        mjd_start = model["mjd_start"]
    else:
        trace = trace_model(p)
        idx = np.arange(n_sci)
        in_transit = (idx >= round(n_sci / 3)) & (idx < round(2 * n_sci / 3))
        throughput = extra["throughput"]
        flux_scale = np.where(in_transit, 1.0 - p.transit_depth, 1.0) * throughput
        mjd_start = MJD_START

    def science_signal(i):
        """(signal image e-, scale) of science frame i."""
        if not p.systematics:
            return trace["signal_e"], float(flux_scale[i])
        factor = model["columns"][i] * (throughput[i] * sysm["slit"][i])
        return frame_signal(trace, sysm["offset"][i], sysm["smear"][i], factor), 1.0

    rows = []
    frames = [("dark", i, temp_dark[i], t_dark[i], False, s)
              for i, s in enumerate(ss_darks.spawn(p.n_darks))]
    frames += [("science", i, temp_sci[i], t_sci[i], bool(in_transit[i]), s)
               for i, s in enumerate(ss_science.spawn(n_sci))]
    for f, (kind, i, temp, tmid, transit, ss) in enumerate(frames):
        name = f"{kind}_{i:04d}.fits"
        signal_e, scale = science_signal(i) if kind == "science" else (None, 1.0)
        frame = expose(p, detector, temp, signal_e, scale, np.random.default_rng(ss),
                       scatter_e=scatter_image(p, extra["scatter"][f]))
        jitter = sysm["jitter"][i] if kind == "science" and p.jitter_median > 0 else None
        header = frame_header(p, kind, i, temp, tmid, meta, mjd_start, jitter)
        folder = "darks" if kind == "dark" else "science"
        write_fits(out / folder / name, [fits.PrimaryHDU(frame["data"], header=header)])
        truth_scale = float(flux_scale[i]) if kind == "science" else 1.0
        write_fits(out / "truth" / name,
                   frame_truth_hdus(kind, f"{folder}/{name}", temp, transit, truth_scale,
                                    extra["scatter"][f][0], frame, meta))
        rows.append((name, kind, float(temp), p.exptime, transit, truth_scale, float(tmid),
                     frame["saa"], frame["n_cosmic"],
                     float(throughput[i]) if kind == "science" else 1.0,
                     float(extra["scatter"][f][0])))

    mask_header = fits.Header()
    mask_header["MASKHALF"] = (trace["half_height"], "[rows] half height about the trace centre")
    mask_header["NSPEC"] = (int(trace["mask"].sum()), "number of spectral pixels")
    mask_header.update(meta)
    write_fits(out / "spectral_mask.fits",
               [fits.PrimaryHDU(trace["mask"].astype(np.uint8), header=mask_header)])
    truth = truth_hdus(p, detector, trace, rows, meta)
    transit_keys = None
    if p.systematics:
        names = [r[0] for r in rows if r[1] == "science"]
        truth += systematics_hdus(p, names, times, sysm, mjd_start + t_sci / 86400.0, temp_sci,
                                  model["white"], flux_scale, throughput, trace["wave"],
                                  model["radius"])
        truth[0].header.update(visit_cards(p, visit, sysm, model["transit_mid"]))
        transit_keys = model["config"]
    for text in changed:
        truth[0].header.add_history(f"override {text}")
    write_fits(out / "truth" / "truth.fits", truth)
    write_text(out / "config.yaml", config_text(p, preset_name, seed, changed, transit_keys))


def _transit_model(p: SimulationParameters, visit, times, sysm, trace) -> dict:
    """The visit's transit: per-frame-and-column factors, white factors, times and config keys.

    With ``planet_period`` a batman transit of Rp/R* per column, mid-transit
    at the visit's ``transit_time``; the first visit's nominal middle is the
    ephemeris' reference, and visit *k* transits ``visit_spacing (k - 1)``
    periods later.  Without, the box transit of the middle third of the
    frames (depth ``transit_depth`` in every column).
    """
    t = times["time"]
    weights = trace["flux_e"] / trace["flux_e"].sum()
    if p.planet_period is None:
        idx = np.arange(len(t))
        first, stop = round(len(t) / 3), round(2 * len(t) / 3)
        in_transit = (idx >= first) & (idx < stop)
        radius = np.full(p.n_columns, math.sqrt(p.transit_depth))
        columns = np.where(in_transit[:, None], 1.0 - p.transit_depth, 1.0) * np.ones(p.n_columns)
        config, transit_mid = None, None
        if 0 < stop - first < len(t):
            # The window reaches half the readout gap beyond its first and last exposures.
            half = 0.5 * p.cadence
            begin, end = t[first] - half, t[stop - 1] + half
            config = {"transit_model": "box", "transit_mid": MJD_START + 0.5 * (begin + end) / 86400.0,
                      "transit_duration": (end - begin) / 86400.0}
        return {"columns": columns, "white": columns @ weights, "in_transit": in_transit,
                "radius": radius, "mjd_start": MJD_START, "transit_mid": transit_mid,
                "config": config}
    first_start, last_end = t[0] - 0.5 * p.exptime, t[-1] + 0.5 * p.exptime
    reference = MJD_START + 0.5 * float(first_start + last_end) / 86400.0
    transit_mid = reference + p.visit_spacing * (visit - 1) * p.planet_period
    mjd_start = transit_mid - sysm["transit_time"] / 86400.0
    radius = rp_rs(p, trace["wave"])
    columns = light_curves(p, radius, (t - sysm["transit_time"]) / 86400.0)
    white = columns @ weights
    config = {"transit_model": "batman", "transit_mid": transit_mid,
              "transit_duration": total_duration(p), "planet_period": p.planet_period,
              "planet_a_rs": p.planet_a_rs, "planet_inclination": p.planet_inclination,
              "limb_darkening": list(p.limb_darkening) or None}
    return {"columns": columns, "white": white, "in_transit": white < 1.0, "radius": radius,
            "mjd_start": mjd_start, "transit_mid": transit_mid, "config": config}
