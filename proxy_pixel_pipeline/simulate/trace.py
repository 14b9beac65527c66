"""The star's spectrum and the spectral trace: expected signal image, profile and mask."""

from __future__ import annotations

import math

import numpy as np

from .parameters import SimulationParameters

__all__ = ["spectrum", "trace_model", "frame_signal"]

# Second radiation constant h c / k in Angstrom * K (for the Planck continuum).
_C2_ANGSTROM_K = 1.438777e8
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def spectrum(p: SimulationParameters):
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


def trace_model(p: SimulationParameters, shift: float = 0.0) -> dict:
    """Trace geometry, expected signal image (e-, out of transit) and spectral mask.

    Parameters
    ----------
    p : SimulationParameters
    shift : float
        Rows the trace is moved by (a visit's ``trace_shift``); the mask
        follows it (``mask_lines`` by the rounded value).  The signal's scale
        is that of the unshifted trace, so a shift changes no flux.

    Returns
    -------
    dict
        ``center``, ``mu1``, ``mu2``, ``sig1``, ``sig2`` (rows, per column),
        ``amp1_e``, ``amp2_e`` (peak e- per exposure), ``wave`` (A),
        ``signal_e`` (image, e- per exposure), ``flux_e`` (its column sums),
        ``mask`` (bool image) and ``half_height`` (rows).

    Raises
    ------
    ValueError
        The trace and its mask do not fit in the frame.
    """
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
    wave, continuum = spectrum(p)
    shape = unit * continuum
    on_trace = np.ones(nx, bool)
    if p.trace_columns is not None:
        on_trace = (x >= p.trace_columns[0]) & (x <= p.trace_columns[1])
        shape = shape * on_trace
    norm = p.peak_signal_e / shape.max()
    if shift:
        center, mu1, mu2 = center + shift, mu1 + shift, mu2 + shift
        unit = (a1 * np.exp(-0.5 * ((yy - mu1) / sig1) ** 2)
                + a2 * np.exp(-0.5 * ((yy - mu2) / sig2) ** 2))
        shape = unit * continuum * on_trace
    if p.mask_half_height is None:
        half = p.mask_nsigma * max(sig1.max(), sig2.max()) + sep.max() / 2 + p.mask_margin
    else:
        half = float(p.mask_half_height)
    if center.min() - half < 0 or center.max() + half > ny - 1:
        raise ValueError(
            f"trace (rows {center.min():.1f}-{center.max():.1f}) with mask half height "
            f"{half:.1f} does not fit in {ny} rows; change n_rows, trace_y0, trace_slope "
            + ("or the trace widths" if not shift else
               f"or the trace widths, or lower visit_trace_shift (shifted by {shift:+.1f})"))
    mask = np.abs(yy - center) <= half
    if p.mask_lines is not None:
        (lo0, lo1), (hi0, hi1) = p.mask_lines
        rows = round(shift)
        if min(lo0, lo1) + rows < 0 or max(hi0, hi1) + rows > ny - 1:
            raise ValueError(f"mask_lines shifted by {rows} rows (visit_trace_shift) leave the "
                             f"frame's {ny} rows; lower visit_trace_shift")
        mask = ((yy >= lo0 + rows + (lo1 - lo0) * x / nx)
                & (yy <= hi0 + rows + (hi1 - hi0) * x / nx))
    mask &= on_trace
    signal_e = shape * norm
    return {"center": center, "mu1": mu1, "mu2": mu2, "sig1": sig1, "sig2": sig2,
            "amp1_e": a1 * continuum * norm * on_trace, "amp2_e": a2 * continuum * norm * on_trace,
            "wave": wave, "signal_e": signal_e, "flux_e": signal_e.sum(axis=0),
            "mask": mask, "half_height": float(half)}



def frame_signal(trace: dict, offset: float, smear: float, column_factor) -> np.ndarray:
    """Expected signal image of one frame (e-): the trace moved, smeared and scaled.

    Parameters
    ----------
    trace : dict
        :func:`trace_model` of the visit.
    offset : float
        Rows the trace is moved by in this frame.
    smear : float
        Gaussian sigma (rows) the profile is convolved with: each peak's
        sigma becomes ``hypot(sigma, smear)``, its integral unchanged.
    column_factor : ndarray, shape (n_columns,)
        Factor on each column's flux (transit, throughput, slit loss).

    Returns
    -------
    ndarray, shape (n_rows, n_columns)
    """
    yy = np.arange(trace["mask"].shape[0], dtype=float)[:, None]
    image = np.zeros(trace["mask"].shape)
    for peak in ("1", "2"):
        sigma = trace["sig" + peak]
        wide = np.hypot(sigma, smear)
        image += (trace[f"amp{peak}_e"] * sigma / wide
                  * np.exp(-0.5 * ((yy - trace["mu" + peak] - offset) / wide) ** 2))
    return image * column_factor
