"""The detector and each exposure: dark-current maps, CCD temperatures, scattered light,
never-downlinked and lost pixels, cosmic rays, and the noisy frame (ADU) with its truth."""

from __future__ import annotations

import math

import numpy as np

from .parameters import SimulationParameters

__all__ = ["detector_maps", "temperatures", "extra_components", "scatter_image", "expose"]

_LN2 = math.log(2.0)


def detector_maps(p: SimulationParameters, rng) -> dict:
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


def temperatures(p: SimulationParameters, rng, science_times=None):
    """Mid-exposure times (s from block start) and CCD temperatures (degC) of darks and science.

    Each block is a run of exposures every ``cadence`` s starting at a random
    orbital phase; temperatures are rounded to 1 mdegC, as a sensor would
    report them, and the rounded value is the one used for the dark current.
    ``science_times`` (mid-exposure, s; e.g. in orbit windows,
    :func:`~.systematics.science_times`) replace the science block's
    regular ones; the temperature follows the orbit at those times.
    """
    def block(n, mean, times=None):
        t = np.arange(n) * p.cadence + 0.5 * p.exptime if times is None else np.asarray(times)
        phase = rng.uniform(0.0, 2.0 * math.pi)
        drift = rng.uniform(-1.0, 1.0) * p.temp_drift
        ramp = (t - t[0]) / (t[-1] - t[0]) - 0.5 if n > 1 else np.zeros(n)
        temps = (mean + p.temp_orbit_amplitude * np.sin(2.0 * math.pi * t / p.orbit_period + phase)
                 + drift * ramp + p.temp_jitter * rng.standard_normal(n))
        return t, temps

    t_dark, temp_dark = block(p.n_darks, p.temp_ref)
    t_sci, temp_sci = block(p.n_science, p.temp_ref + p.science_temp_offset, science_times)
    temp_dark, temp_sci = np.round(temp_dark, 3), np.round(temp_sci, 3)
    if p.science_above_darks is not None:
        # Shift rounded up to 1 mdegC so the bound holds for the rounded values too.
        shift = math.ceil((temp_dark.max() + p.science_above_darks - temp_sci.min()) * 1e3) / 1e3
        temp_sci = np.round(temp_sci + shift, 3)
    return (t_dark, temp_dark), (t_sci, temp_sci)


def expose(p: SimulationParameters, det: dict, temp, signal_e, scale, rng, scatter_e=None) -> dict:
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


def extra_components(p: SimulationParameters, rng) -> dict:
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


def scatter_image(p: SimulationParameters, frame_scatter):
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

