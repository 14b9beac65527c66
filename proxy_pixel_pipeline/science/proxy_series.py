"""Each proxy's value in a science frame taken from its whole series: less noise, same level.

The background of a spectral pixel is the combination of its proxies' values
in the same frame.  Their noise is what limits the white light: each proxy
serves about ``N_spectral K / N_proxies`` spectral pixels (~20), so its noise
adds up coherently in the frame's sum, ``N_spectral sigma / sqrt(N_proxies)``
when every candidate serves evenly (``docs/unbiased_fluxes.md``).  A proxy's
value is, apart from its noise, what the frame's conditions make it: its own
level, its dark current at the frame's temperature and the frame's scattered
light at its place.  :func:`model_proxy_series` fits that to every proxy over
the science frames,

    x_qf = S_f(q) + a_q + b_q t_f,

``S_f``: frame ``f``'s smooth excess over the darks at the pixel
(:class:`.scattered_light.ExcessField`, its constant included: fitted to all
non-spectral pixels, evenly); ``t_f``: the frame's dark-level term (its dark
current over the darks', from the same fit); ``a_q``, ``b_q``: the pixel's
level and temperature response, by least squares over the frames with
outliers (cosmic rays) clipped.  The model's noise is ``sigma sqrt(2 / N)``
for ``N`` frames instead of ``sigma``.  What is left of the white light's
per-frame error is the frame's own level, measured on the non-spectral
pixels (``N_spectral sigma / sqrt(N_usable)``): nothing taken from the
candidates' values goes below it.

A guard and a check:

- per pixel, a pixel whose residual scatter exceeds that of pixels of its
  level (its dark current flickers, its temperature law is not linear) keeps
  a share ``w = 1 - expected / observed`` of its own values;
- per frame, the proxies' residuals weighted by how many spectral pixels use
  each (what reaches the white light) should scatter as their noise does.
  More (``coherent``) means structure common to many proxies that the model
  does not follow: starlight reaching candidates near a smeared trace, or
  light the smooth excess does not describe.  It is reported, not given
  back: on the one bench visit where it happened (``kelt9b`` seed 11, visit
  2, 5.2x) the white-light background error was 9 840 ADU per frame from the
  frames' own values, 5 100 from the model and 7 330 with the weighted
  residual given back: the structure was on the candidates (about 0.1 ADU on
  all of them, whatever their distance from the trace, uncorrelated with the
  flux, the trace's offset and width or the temperature), not at the trace.

Measured against the simulator's truth (white-light background error per
frame, stage 2's defaults otherwise): 0.126 -> 0.098 % of the white flux on
``wasp189b`` seed 5, 0.136 -> 0.094 % on ``kelt9b`` seed 11; in-trace
residual 1.04 -> 1.02x the oracle's on six sets; tables in
``docs/unbiased_fluxes.md``.

Nothing here imports MPI.
"""

from __future__ import annotations

import numpy as np

from .background import row_line_fit
from .robust import MAD_TO_SIGMA

__all__ = ["model_proxy_series", "SERIES_CLIP_SIGMA", "COHERENCE_SIGMA"]

#: Values further than this many robust sigmas from the model leave its fit.
SERIES_CLIP_SIGMA = 4.0

#: The per-frame check flags a use-weighted residual variance this many of its own
#: standard errors above the noise's.
COHERENCE_SIGMA = 3.0

#: Pixels are pooled in this many bins of level to learn the scatter a
#: well-described pixel shows (the per-pixel guard's ``expected``).
LEVEL_BINS = 50


def model_proxy_series(series, smooth, frame_term, dropped=None, min_frames=10,
                       weights=None, clip_sigma=SERIES_CLIP_SIGMA, iterations=3):
    """The proxies' values in the science frames, each from its model over the frames.

    Parameters
    ----------
    series : ndarray, shape (n_pixels, n_frames)
        The proxies' values, ADU (NaN = missing).
    smooth : ndarray, shape (n_pixels, n_frames)
        Each frame's smooth excess over the darks at each pixel, its constant
        included, ADU (``ExcessField.spatial`` plus the constant); zeros to
        model the level by the pixel alone.
    frame_term : ndarray, shape (n_frames,)
        Each frame's dark-level term ``t`` (``ExcessField.temperature_slope``,
        typ. -0.1 .. 0.1), or any frame quantity the pixels respond to
        linearly (the CCD temperature).
    dropped : ndarray of bool, shape (n_pixels, n_frames), optional
        Values not to fit (cosmic-ray hits); they are returned modelled.
    min_frames : int
        Fewest frames a pixel needs for its model (typ. 10): with fewer frames
        in all, or valid for a pixel, its own values are returned.
    weights : ndarray, shape (n_pixels,), optional
        How many spectral pixels use each proxy: the per-frame guard's weights
        (default: all 1).
    clip_sigma : float
        Values beyond this many robust sigmas of the model are refitted
        without, ``iterations`` times (typ. 4).

    Returns
    -------
    values : ndarray, shape (n_pixels, n_frames)
        ``model + w (series - model)``; NaN where ``series`` is NaN.
    info : dict
        ``own_share`` (mean ``w``), ``coherence`` (the per-frame check's
        observed over expected variance) and ``coherent`` (it exceeds
        ``1 + COHERENCE_SIGMA sqrt(2 / n_frames)``).
    """
    series = np.asarray(series, float)
    n_pixels, n_frames = series.shape
    finite = np.isfinite(series)
    info = {"own_share": 1.0, "coherence": np.nan, "coherent": False}
    if n_frames < max(min_frames, 3) or n_pixels == 0:
        return series.copy(), info
    t = np.asarray(frame_term, float)
    y = series - smooth
    use = finite if dropped is None else finite & ~dropped
    for _ in range(iterations + 1):
        model, n_used = row_line_fit(y, t, use)
        residual = np.where(use, y - model, np.nan)
        with np.errstate(invalid="ignore"):
            sigma = MAD_TO_SIGMA * np.nanmedian(np.abs(residual), axis=1)
        keep = finite & (np.abs(y - model) <= clip_sigma * np.fmax(sigma, 1e-6)[:, None])
        if dropped is not None:
            keep &= ~dropped
        if np.array_equal(keep, use):
            break
        use = keep
    fitted = n_used >= min_frames
    model = np.where(fitted[:, None], model + smooth, series)

    # Per pixel: the residual variance against that of pixels of the same level.
    variance = np.nanmean(np.where(use, series - model, np.nan) ** 2, axis=1)
    expected = _expected_variance(np.nanmedian(np.where(use, series, np.nan), axis=1),
                                  variance, fitted, n_used)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = np.clip(1.0 - expected / variance, 0.0, 1.0)
    own = np.where(fitted & np.isfinite(own), own, 1.0)
    deviation = series - model
    if dropped is not None:
        deviation = np.where(dropped, 0.0, deviation)
    values = model + own[:, None] * deviation

    # Per frame: the use-weighted residual should scatter as the noise does.
    u = np.ones(n_pixels) if weights is None else np.asarray(weights, float)
    u = np.where(fitted, u, 0.0)
    per_frame = u @ np.where(use, series - values, 0.0)
    noise_var = float(np.nansum(u ** 2 * (1.0 - own) ** 2 * expected))
    if noise_var > 0:
        info["coherence"] = float(np.var(per_frame) / noise_var)
        info["coherent"] = info["coherence"] > 1.0 + COHERENCE_SIGMA * np.sqrt(2.0 / n_frames)
    info["own_share"] = float(own.mean())
    return np.where(finite, values, np.nan), info


def _expected_variance(level, variance, fitted, n_used):
    """The residual variance of a pixel the model describes, by level: the median over
    pixels in the same bin of level (most are described), as a mean."""
    expected = np.full(len(level), np.nan)
    ok = np.flatnonzero(fitted & np.isfinite(level) & np.isfinite(variance))
    if not len(ok):
        return expected
    # A chi-square's median lies below its mean by (1 - 2 / (9 dof))^3.
    dof = np.maximum(n_used[ok] - 2, 1)
    scaled = variance[ok] / (1.0 - 2.0 / (9.0 * dof)) ** 3
    order = np.argsort(level[ok])
    for part in np.array_split(order, min(LEVEL_BINS, len(ok))):
        expected[ok[part]] = np.median(scaled[part])
    return expected
