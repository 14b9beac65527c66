"""Stage 4: fits of a Final Frame's binned profiles with the peak ratio held.

Each bin starts from the Median Frame fit (stage 3) with its amplitude and
offset scaled to the data; a fit that is not physical falls back to the
scaled reference (see :func:`fit_final_profiles`).
"""

from __future__ import annotations

import numpy as np

from ...flags import FitFlag
from .engine import (_M_SINGLE, _MIN_POINTS_DOUBLE, _MIN_POINTS_SINGLE, _bin_data,
                     _check_inputs, _fit_model, _m_fixed_ratio)
from .model import double_gaussian
from ...io.profile_fits import ProfileFits

__all__ = ["fit_final_profiles", "scale_reference"]


def scale_reference(y, profile, ref_params, weights=None, absolute=False):
    """Linear least squares ``profile = k * shape + c`` of a reference fit's shape.

    ``shape`` is the reference double Gaussian without its offset.  ``k`` is
    kept >= 0 (a negative trace makes no sense; ``c`` is then the weighted
    mean).  With fewer than 3 samples, or a reference that is ~0 over the
    data rows, ``k`` cannot be measured: ``k = 1`` (unscaled reference) and
    only ``c`` is fitted.  Stage 4 uses it for its fallback fits; the figures
    to draw the Median Frame fit over a Final Frame's profile.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Rows of the samples (finite values only).
    profile : ndarray, shape (n,)
        The samples, ADU.
    ref_params : sequence of 7 float
        Reference fit, in the order of :data:`PARAM_NAMES`.
    weights : ndarray, shape (n,), optional
        ``1 / sigma`` of each sample; default all ones.
    absolute : bool
        The weights are true ``1 / sigma`` (the errors are not rescaled by
        the reduced chi-square).

    Returns
    -------
    (float, float, float, float, float)
        ``k, c, k_err, c_err, chi2_red`` (errors and chi-square NaN when
        ``k`` could not be measured).
    """
    shape = double_gaussian(y, *ref_params[:6], 0.0)
    n = len(y)
    w = np.ones(n) if weights is None else weights
    ww = w * w
    level = abs(ref_params[0]) + abs(ref_params[3])
    if n >= 3 and np.max(np.abs(shape)) > 1e-3 * level:
        a = np.column_stack([shape, np.ones(n)]) * w[:, None]
        (k, c), *_ = np.linalg.lstsq(a, profile * w, rcond=None)
        if k < 0:
            k = 0.0
            c = np.sum(profile * ww) / np.sum(ww)
        ssr = float(np.sum(((k * shape + c - profile) * w) ** 2))
        chi2_red = ssr / (n - 2)
        with np.errstate(all="ignore"):
            cov = np.linalg.pinv(a.T @ a)
        if not absolute:
            cov = cov * chi2_red
        k_err, c_err = np.sqrt(np.clip(np.diag(cov), 0, None))
        return float(k), float(c), float(k_err), float(c_err), chi2_red
    c = np.sum((profile - shape) * ww) / np.sum(ww)
    return 1.0, float(c), np.nan, np.nan, np.nan


def _fallback(ref_params, ref_errors, k, c, k_err, c_err):
    params = np.array(ref_params, dtype=float)
    errors = np.array(ref_errors, dtype=float)
    params[[0, 3]] *= k
    errors[[0, 3]] = k_err * np.abs(np.asarray(ref_params)[[0, 3]])
    params[6], errors[6] = c, c_err
    return params, errors


def _fit_final_bin(d, ref_params, ref_errors, ref_single, scale_limits, max_nfev):
    """Fixed-ratio fit of one bin; returns (params, errors, chi2_red, flag)."""
    n = len(d.y)
    k, c, k_err, c_err, chi2_lin = scale_reference(d.y, d.p, ref_params, d.w, d.absolute)
    base = FitFlag.SINGLE if ref_single else FitFlag.GOOD
    fallback = _fallback(ref_params, ref_errors, k, c, k_err, c_err)
    n_min = _MIN_POINTS_SINGLE if ref_single else _MIN_POINTS_DOUBLE - 1
    if n < n_min:
        return (*fallback, chi2_lin, base | FitFlag.FALLBACK)

    inf = np.inf
    ylo, yhi = float(d.y[0]), float(d.y[-1])
    a1, m1, s1, a2, m2, s2, _ = ref_params
    k0 = np.clip(k, scale_limits[0], scale_limits[1])
    if ref_single:
        m = _M_SINGLE
        theta0 = np.array([k0 * a1, m1, s1, c])
        lower = np.array([0.0, ylo, d.sigma_lo, -inf])
        upper = np.array([inf, yhi, d.sigma_hi, inf])
        shape_params = [1, 2]          # free centre/width indices in theta
        ref_amp, amp_index = a1, 0
    else:
        ratio = a1 / a2
        m = _m_fixed_ratio(ratio)
        theta0 = np.array([k0 * a2, m1, s1, max(m2 - m1, 0.0), s2, c])
        lower = np.array([0.0, ylo, d.sigma_lo, 0.0, d.sigma_lo, -inf])
        upper = np.array([inf, yhi, d.sigma_hi, yhi - ylo, d.sigma_hi, inf])
        shape_params = [1, 2, 3, 4]
        ref_amp, amp_index = a2, 3

    fit = _fit_model(d, m, theta0, lower, upper, max_nfev)
    scale = fit.params[amp_index] / ref_amp if ref_amp > 0 else np.nan
    physical = (fit.converged
                and np.all(np.isfinite(fit.errors))
                and not np.any(fit.at_bound[shape_params])
                and scale_limits[0] <= scale <= scale_limits[1])
    if not physical:
        return (*fallback, chi2_lin, base | FitFlag.FALLBACK)
    return fit.params, fit.errors, fit.chi2_red, base


def fit_final_profiles(profiles, reference, rows=None, *, edges=None, sigma=None,
                       scale_limits=(0.2, 5.0), sigma_bounds=None, max_nfev=200):
    """Fit each bin of one Final Frame with the peak ratio held at the reference.

    The double Gaussian is parametrized by ``amp2`` (with ``amp1 = ratio *
    amp2``, ``ratio`` the reference bin's ``amp1/amp2``, held exactly),
    ``mu1``, ``sigma1``, ``mu2 - mu1 >= 0``, ``sigma2`` and ``offset``; bins
    whose reference is SINGLE get a single Gaussian.  The fit starts from
    the reference parameters, with the amplitude and offset of the reference
    shape scaled to the data by linear least squares.

    A fit that does not converge, has undetermined errors, a centre, width
    or separation at a bound (centre at the edge of the data rows, width at
    ``sigma_bounds``), or an amplitude scale ``amp/amp_reference`` outside
    ``scale_limits`` is replaced by the **fallback**: the reference with its
    amplitudes multiplied by the linear scale factor ``k >= 0`` and its
    offset by the fitted constant, flag FALLBACK (amplitude and offset
    errors from the linear fit, centre and width errors the reference's).
    Never raises on bad data.

    Parameters
    ----------
    profiles : array_like, shape (n_bins, n_rows)
        Binned profiles of one Final Frame in ADU (background removed, NaN
        outside the trace and at empty pixels).
    reference : ProfileFits
        Median Frame fits (:func:`fit_median_profiles`) of the same bins and
        rows.  Its background level (``offset``) is not used: a Final Frame
        has its own, ~0.
    rows : array_like, shape (n_rows,), optional
        Frame row of each profile sample; default ``0..n_rows-1``.
    edges : array_like of int, optional
        Column edges of the bins; default the reference's.
    sigma : array_like, optional
        1-sigma uncertainties (ADU) of the profile samples, as in
        :func:`fit_median_profiles`.
    scale_limits : (float, float)
        Accepted range of ``amp2_fit / amp2_reference`` (``amp1`` for single
        bins); default (0.2, 5): a Final Frame has the Median Frame's
        exposure, so its trace should be about as bright.
    sigma_bounds : (float, float), optional
        Width bounds in pixels, default ``(0.5, span/4)``.
    max_nfev : int
        Maximum function evaluations per fit (default 200).

    Returns
    -------
    ProfileFits
        Flags: GOOD or SINGLE (fit accepted), plus FALLBACK (scaled
        reference); FAILED | FALLBACK (no finite sample: reference with
        offset 0); FAILED with NaN parameters if the reference bin failed.
    """
    profiles, rows, sigma = _check_inputs(profiles, rows, sigma, sigma_bounds)
    n_bins = profiles.shape[0]
    if len(reference) != n_bins:
        raise ValueError(f"reference has {len(reference)} bins, profiles {n_bins}")
    if edges is None:
        edges = np.append(reference.column_lo, reference.column_hi[-1:]) if n_bins else None
    out = ProfileFits.empty(n_bins, edges)
    ref_params, ref_errors = reference.params, reference.errors
    for b in range(n_bins):
        rp = ref_params[b]
        ref_flag = int(reference.flag[b])
        if ref_flag & FitFlag.FAILED or not np.all(np.isfinite(rp)):
            continue
        ref_single = bool(ref_flag & FitFlag.SINGLE) or not rp[3] > 0
        ratio = np.nan if ref_single else rp[0] / rp[3]
        base = FitFlag.SINGLE if ref_single else FitFlag.GOOD
        d = _bin_data(profiles[b], rows, None if sigma is None else sigma[b], sigma_bounds)
        if d is None:
            params = rp.copy()
            params[6] = 0.0
            errors = ref_errors[b].copy()
            errors[6] = np.nan
            out.set_bin(b, params, errors, ratio, np.nan, 0,
                        base | FitFlag.FALLBACK | FitFlag.FAILED)
            continue
        params, errors, chi2_red, flag = _fit_final_bin(d, rp, ref_errors[b], ref_single,
                                                         scale_limits, max_nfev)
        out.set_bin(b, params, errors, ratio, chi2_red, len(d.y), flag)
    return out
