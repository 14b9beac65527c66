"""Background and Final Frames (stage 2).

For one science frame, the Background Frame gives each spectral pixel the
value of its proxy pixel(s) in that same frame and is empty (NaN) everywhere
else; the Final Frame is Science - Background.  With K > 1 proxies per pixel
their values are combined robustly, so one proxy hit by a cosmic ray or
missing in this frame does not spoil the background.

A proxy hit by a cosmic ray in a science frame stands far above its own time
series over the science frames: :func:`proxy_hits` finds such values so that
stage 2 drops them (one proxy: the background pixel becomes empty and stage 5
infills it; K proxies: the combination ignores it).
"""

from __future__ import annotations

import numpy as np

from .robust import MAD_TO_SIGMA

__all__ = ["background_frame", "final_frame", "combine_proxies", "background_error", "proxy_hits",
           "row_line_fit", "CLIP_SIGMA"]



def proxy_hits(series, noise, n_sigma=5.0, min_frames=5, iterations=3):
    """Values of proxy pixels that are outliers of their own science series.

    Each proxy's value in frame ``f`` is predicted from the other frames as
    ``a + b * c_f``: ``c_f`` is the frame's common dark and scattered-light
    level (median over all proxies of their deviation from their own median),
    ``a`` and ``b`` the pixel's level and response to it (a warmer frame
    raises a pixel's dark current in proportion to it), fitted by least
    squares with outliers clipped.  A value more than ``n_sigma`` noise
    above the prediction (cosmic rays only add charge) is a hit.

    Parameters
    ----------
    series : ndarray, shape (n_proxies, n_frames)
        The proxies' values in the science frames, ADU (NaN = missing).
    noise : ndarray, shape (n_proxies,) or float
        Each proxy's one-sigma noise, ADU (read and dark shot noise, e.g.
        ``RES_STD / sqrt(2)`` of its stage-1 match, typ. a few ADU); the
        series' own robust scatter is used where larger.
    n_sigma : float
        Detection threshold in sigma (typ. 5).  0 finds nothing.
    min_frames : int
        Fewest valid frames a series needs to be judged (typ. 5): with
        fewer, nothing is flagged.
    iterations : int
        Clip-and-refit passes.

    Returns
    -------
    ndarray of bool, shape (n_proxies, n_frames)
        True for the values to drop.
    """
    series = np.asarray(series, float)
    valid = np.isfinite(series)
    hits = np.zeros(series.shape, bool)
    n_valid = valid.sum(axis=1)
    if n_sigma <= 0 or series.shape[1] < max(min_frames, 3):
        return hits
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN series
        level = np.nanmedian(series, axis=1)
        common = np.nanmedian(series - level[:, None], axis=0)
        common = np.where(np.isfinite(common), common, 0.0)
        floor = np.broadcast_to(np.asarray(noise, float), level.shape)
        floor = np.where(np.isfinite(floor), floor, np.nanmedian(floor))
        # Robust start, so that one hit cannot tilt the first fit: the median
        # response over the frames far from the common level's median.
        far = np.abs(common - np.median(common)) >= np.median(np.abs(common - np.median(common)))
        ratio = (series - level[:, None]) / np.where(common != 0, common, np.nan)[None, :]
        slope = np.nan_to_num(np.nanmedian(np.where(far[None, :], ratio, np.nan), axis=1))
        start = series - level[:, None] - slope[:, None] * common[None, :]
        spread = np.fmax(MAD_TO_SIGMA * np.nanmedian(np.abs(start), axis=1), floor)
        use = valid & (np.abs(start) <= 4.0 * spread[:, None])
        for _ in range(iterations):
            residual, sigma = _fit_common(series, common, use, floor)
            use = valid & (np.abs(residual) <= 4.0 * sigma[:, None])
        residual, sigma = _fit_common(series, common, use, floor)
    hits = valid & (residual > n_sigma * sigma[:, None]) & (n_valid >= min_frames)[:, None]
    return hits


def _fit_common(series, common, use, floor):
    """Residuals of ``series ~ a + b * common`` fitted over ``use``, and the robust sigma."""
    residual = series - row_line_fit(series, common, use)[0]
    mad = np.nanmedian(np.abs(np.where(use, residual, np.nan)), axis=1)
    sigma = np.fmax(MAD_TO_SIGMA * mad, floor)
    return residual, sigma


def row_line_fit(y, x, use):
    """Each row of ``y`` fitted by ``a + b x`` (least squares over its ``use`` values).

    Parameters
    ----------
    y : ndarray, shape (n, m)
    x : ndarray, shape (m,)
        The regressor, shared by the rows (a frame quantity).
    use : ndarray of bool, shape (n, m)

    Returns
    -------
    fit : ndarray, shape (n, m)
        ``a + b x`` at every column (``b`` = 0 where ``x`` does not vary over a
        row's values).
    n_used : ndarray, shape (n,)
    """
    w = use.astype(float)
    n = w.sum(axis=1)
    nn = np.maximum(n, 1.0)
    x_mean = (w * x).sum(axis=1) / nn
    y_mean = np.where(use, y, 0.0).sum(axis=1) / nn
    dx = x[None, :] - x_mean[:, None]
    var = (w * dx ** 2).sum(axis=1)
    slope = np.where(var > 0, (w * dx * np.where(use, y - y_mean[:, None], 0.0)).sum(axis=1)
                     / np.where(var > 0, var, 1.0), 0.0)
    return y_mean[:, None] + slope[:, None] * dx, n


def combine_proxies(values, method="median", clip_sigma=3.0):
    """Combine the K proxies' values of each spectral pixel.

    Parameters
    ----------
    values : ndarray, shape (n, K)
        Proxy values in ADU, NaN = proxy missing in this frame or absent.
    method : {'median', 'clipped_mean'}
        ``median``: median of the valid values. ``clipped_mean``: mean of the
        values within ``clip_sigma`` robust standard deviations of their
        median (1.4826 x MAD).
    clip_sigma : float
        Clipping threshold (typ. 3); values beyond it (a proxy hit by a cosmic
        ray) are also left out of ``spread``.

    Returns
    -------
    value : ndarray, shape (n,)
        Combined background (ADU).
    spread : ndarray, shape (n,)
        Standard deviation of the unclipped values (ADU; NaN with fewer than 2).
    used : ndarray of int, shape (n,)
        Number of unclipped values.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # pixels with fewer than 2 valid proxies
        med = np.nanmedian(values, axis=1)
        mad = MAD_TO_SIGMA * np.nanmedian(np.abs(values - med[:, None]), axis=1)
        keep = np.abs(values - med[:, None]) <= clip_sigma * mad[:, None]
        keep |= (mad == 0)[:, None] & (values == med[:, None])
        kept = np.where(keep, values, np.nan)
        if method == "median":
            value = med
        elif method == "clipped_mean":
            value = np.nanmean(kept, axis=1)
        else:
            raise ValueError(f"unknown proxy_combine {method!r}")
        used = np.count_nonzero(keep, axis=1)
        spread = np.where(used >= 2, np.nanstd(kept, axis=1, ddof=1), np.nan)
    return value, spread, used


def background_error(spread, used, method, n_darks, level_bias=0.0, noise_floor=0.0,
                     cross_fit=False, pixel_noise=None):
    """One-sigma uncertainty of a background combined from K proxies.

    Two parts, both scaled by the proxies' spread ``s`` in this frame (one
    pixel's noise; the spectral pixel's is alike, its proxies were matched to
    it):

    * the combination: ``s / sqrt(m)`` for the clipped mean of the ``m``
      unclipped values, ``sqrt(pi / 2)`` times that for the median (taken
      over all valid values, so this is slightly conservative there);
    * the matched level: each offset (or the match itself) is a median over
      ``N`` darks of spectral minus proxy, so the spectral pixel's own dark
      noise enters all K alike and does not average away:
      ``sqrt(pi / 2) * s * sqrt((1 + 1/m) / N)``;

    plus, in quadrature, a known level difference left uncorrected
    (``level_bias``: the proxies' mean median residual when offsets are not
    applied).  Not included: a drift of the proxies' temperature law beyond
    the darks' temperatures (see docs/proxy_count.md).

    Parameters
    ----------
    spread, used : ndarray, shape (n,)
        From :func:`combine_proxies`.
    method : {'median', 'clipped_mean'}
        The combination used.
    n_darks : ndarray, shape (n,)
        Darks behind each pixel's match (median ``N_SAMPLES`` of its proxies).
    level_bias : ndarray, shape (n,) or float
        Uncorrected level difference, ADU (0 with offsets).
    noise_floor : float
        Least credible single-pixel noise, ADU (read noise and rounding): a
        spread of a few integer values can be 0, a pixel's noise cannot.
    cross_fit : bool
        The offsets were measured on the other half of the darks from the one
        that chose them (stage 1's ``XFIT``); ``n_darks`` is then a half's count.
    pixel_noise : ndarray, shape (n,), optional
        One pixel's noise over the darks (ADU) for the matched level's part,
        where the proxies' spread does not show it: their values taken from
        their series' model (:mod:`.proxy_series`) scatter far less than a
        pixel.  Default: the spread.

    Returns
    -------
    ndarray, shape (n,)
        Uncertainty in ADU (NaN where fewer than 2 proxies were used).
    """
    efficiency = np.pi / 2 if method == "median" else 1.0     # variance of a median / of a mean
    m = np.maximum(used, 1)
    spread = np.maximum(spread, noise_floor)       # NaN stays NaN
    own = spread if pixel_noise is None else np.maximum(pixel_noise, noise_floor)
    # Cross-fitted offsets are medians over half the darks each (N = n_darks), but the
    # spectral pixel's own dark noise enters from both halves: (1/2 + 1/m) / N.
    halves = 2.0 if cross_fit else 1.0
    matched = (np.pi / 2) * (1.0 + halves / m) / (halves * np.maximum(n_darks, 1))
    return np.hypot(np.sqrt(efficiency / m * spread ** 2 + matched * own ** 2), level_bias)


#: Clip of the K proxies' clipped mean, robust sigmas.  At 3 it clips the long (bright)
#: side of the proxies' Poisson-skewed values more often than the short one: -0.045 ADU
#: per trace pixel on the demo data (+0.12 % of the flux); at 4 the bias is gone (-0.002
#: ADU with cross-fitted proxies) and the in-trace residual is unchanged (1.025 against
#: 1.026 times the oracle); a cosmic ray on a proxy stands hundreds of ADU off, and stage 2
#: drops such values before (``proxy_hit_sigma``).  See docs/unbiased_fluxes.md.
CLIP_SIGMA = 4.0


def background_frame(science, spectral_yx, proxy_yx, method="median", offsets=None,
                     n_darks=None, level_bias=0.0, noise_floor=0.0, clip_sigma=CLIP_SIGMA,
                     offset_scale=1.0, cross_fit=False, pixel_noise=None):
    """Build the Background Frame of one science frame.

    Parameters
    ----------
    science : ndarray, shape (rows, columns)
        Science frame in ADU (NaN = missing).
    spectral_yx : ndarray of int, shape (n, 2)
        Row and column of each spectral pixel.
    proxy_yx : ndarray of int, shape (n, K, 2)
        Row and column of its K proxies; -1 where there is no proxy.
    method : {'median', 'clipped_mean'}
        How K > 1 proxies' values are combined (see :func:`combine_proxies`).
    offsets : ndarray, shape (n, K), optional
        Added to each proxy's value before combining: the median residual
        spectral - proxy over the darks (ADU), which corrects a proxy whose
        level differs from its spectral pixel's by a constant.
    n_darks, level_bias : ndarray, shape (n,), optional
        Darks behind each match and the uncorrected level difference (ADU),
        for the uncertainty (see :func:`background_error`); without
        ``n_darks`` only the combination's part is counted.
    noise_floor : float
        Least single-pixel noise in ADU for the uncertainty (see
        :func:`background_error`), e.g. ``sqrt((read_noise / gain)**2 + 1/12)``.
    clip_sigma : float
        Clip of the clipped mean (:data:`CLIP_SIGMA`).
    offset_scale : float
        Factor on ``offsets`` in this frame: dark-current differences grow
        with the temperature like dark current (stage 2 takes
        :attr:`.scattered_light.ExcessField.offset_scale`, fitted to the
        frame); 1 = as measured on the darks.
    cross_fit : bool
        Offsets measured on the other half of the darks (see
        :func:`background_error`).
    pixel_noise : ndarray, shape (n,), optional
        One pixel's noise for the uncertainty's matched level (see
        :func:`background_error`).

    Returns
    -------
    background, error : ndarray, shape (rows, columns)
        Background in ADU, NaN outside the spectral pixels and where no proxy
        value exists; its one-sigma uncertainty in ADU (NaN for K = 1, which
        has no spread to measure).
    """
    py, px = proxy_yx[..., 0], proxy_yx[..., 1]
    has = py >= 0
    values = np.where(has, science[np.where(has, py, 0), np.where(has, px, 0)], np.nan)
    if offsets is not None:
        values = values + offsets * offset_scale
    if values.shape[1] == 1:
        value, error = values[:, 0], np.full(len(values), np.nan)
    else:
        value, spread, used = combine_proxies(values, method, clip_sigma)
        error = background_error(spread, used, method, np.inf if n_darks is None else n_darks,
                                 level_bias, noise_floor, cross_fit, pixel_noise)
    background = np.full(science.shape, np.nan, np.float32)
    uncertainty = np.full(science.shape, np.nan, np.float32)
    background[spectral_yx[:, 0], spectral_yx[:, 1]] = value
    uncertainty[spectral_yx[:, 0], spectral_yx[:, 1]] = error
    return background, uncertainty


def final_frame(science, background):
    """Final Frame = Science - Background (NaN wherever either is NaN)."""
    return (science - background).astype(np.float32)
