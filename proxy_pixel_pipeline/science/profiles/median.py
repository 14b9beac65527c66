"""Stage 3: free fits of the Median Frame's binned profiles, single or double.

Each bin gets both a single and a double Gaussian; the double is kept only
when its peaks are resolved, both significant and the F-test says the 3
extra parameters are needed (see :func:`fit_median_profiles`).
"""

from __future__ import annotations

import numpy as np
from scipy.special import fdtrc

from ...flags import FitFlag
from .engine import (_M_DOUBLE, _M_SINGLE, _MIN_POINTS_DOUBLE, _MIN_POINTS_SINGLE, _bin_data,
                     _check_inputs, _fit_model, _split_seed, _start_values)
from ...io.profile_fits import ProfileFits

__all__ = ["fit_median_profiles"]


def _ratio(params):
    """Peak ratio ``amp1/amp2`` of 7 parameters (``PARAM_NAMES`` order); NaN if ``amp2 <= 0``."""
    return params[0] / params[3] if params[3] > 0 else np.nan


def _fit_median_bin(d, merge_separation, min_amp_snr, f_test_pvalue, max_nfev):
    """Single and double fits of one bin; returns (fit, flag) or (None, FAILED)."""
    y = d.y
    n = len(y)
    if n < _MIN_POINTS_SINGLE:
        return None, FitFlag.FAILED
    inf = np.inf
    ylo, yhi = float(y[0]), float(y[-1])
    single0, doubles0 = _start_values(d)

    lower_s = np.array([0.0, ylo, d.sigma_lo, -inf])
    upper_s = np.array([inf, yhi, d.sigma_hi, inf])
    single = _fit_model(d, _M_SINGLE, single0, lower_s, upper_s, max_nfev)

    double = None
    if n >= _MIN_POINTS_DOUBLE:
        lower_d = np.array([0.0, ylo, d.sigma_lo, 0.0, 0.0, d.sigma_lo, -inf])
        upper_d = np.array([inf, yhi, d.sigma_hi, inf, yhi - ylo, d.sigma_hi, inf])
        seeds = list(doubles0)
        if single.converged:
            seeds.append(_split_seed(single.params, d.sigma_lo, d.sigma_hi))
        fits = [_fit_model(d, _M_DOUBLE, s, lower_d, upper_d, max_nfev) for s in seeds]
        fits = [f for f in fits if f.converged]
        if fits:
            double = min(fits, key=lambda f: f.ssr)

    if double is not None and _double_is_resolved(double, single, n, merge_separation,
                                                  min_amp_snr, f_test_pvalue):
        return double, FitFlag.GOOD
    if single.converged:
        return single, FitFlag.SINGLE
    # Neither a converged single nor a double that passes the checks above
    # (which skip only the F-test when the single did not converge).
    return None, FitFlag.FAILED


def _double_is_resolved(double, single, n, merge_separation, min_amp_snr, f_test_pvalue):
    """The SINGLE/double decision rule (see :func:`fit_median_profiles`)."""
    a1, m1, s1, a2, m2, s2, _ = double.params
    e = double.errors
    # Any parameter stuck at a bound (peaks pushed together, a width at its
    # limit, a centre at the edge) or undetermined errors: not a clean double.
    if np.any(double.at_bound) or not np.all(np.isfinite(e)):
        return False
    if (m2 - m1) < merge_separation * max(s1, s2):
        return False
    if min(a1 / e[0] if e[0] > 0 else np.inf, a2 / e[3] if e[3] > 0 else np.inf) < min_amp_snr:
        return False
    if single.converged:
        # F-test for 3 extra parameters: does the double improve chi2 more
        # than noise would?  (ssr ratio, valid with or without sigma.)
        dof = n - 7
        if double.ssr <= 0:
            return True
        f_stat = ((single.ssr - double.ssr) / 3.0) / (double.ssr / dof)
        if not f_stat > 0 or fdtrc(3, dof, f_stat) > f_test_pvalue:
            return False
    return True


def fit_median_profiles(profiles, rows=None, *, edges=None, sigma=None, merge_separation=1.0,
                        min_amp_snr=3.0, f_test_pvalue=0.01, sigma_bounds=None, max_nfev=200):
    """Fit each bin's Median Frame profile with a double (or single) Gaussian.

    For each bin, NaN samples are skipped and both a single Gaussian and a
    double Gaussian (two starting points: the two highest peaks of the
    lightly smoothed profile, if a second one stands out by 5 % of the main
    amplitude, and the single fit split in two) are fitted with bounds:
    amplitudes >= 0, centres within the bin's finite rows, widths within
    ``sigma_bounds``, ``mu2 - mu1 >= 0``.

    **Merge rule.**  The single Gaussian is used (flag SINGLE) unless the best
    converged double fit passes all of:

    1. no parameter at a bound and a non-singular covariance;
    2. resolved peaks: ``mu2 - mu1 >= merge_separation * max(sigma1,
       sigma2)`` (two Gaussians closer than ~1 sigma look like one);
    3. both amplitudes significant: ``amp / amp_err >= min_amp_snr``;
    4. the 3 extra parameters improve chi2 significantly: F-test
       ``P(F(3, n-7) > F) <= f_test_pvalue``.

    If the single Gaussian does not converge, a double that passes 1-3 is
    used (GOOD); otherwise the bin is FAILED.

    Parameters
    ----------
    profiles : array_like, shape (n_bins, n_rows)
        Binned Median Frame profiles in ADU (see :func:`binned_profiles`),
        NaN for missing samples.  A 1D profile is treated as one bin.
    rows : array_like, shape (n_rows,), optional
        Frame row of each profile sample (strictly increasing); default
        ``0..n_rows-1``.  Centres are in these coordinates, as used by
        :func:`model_frame`.
    edges : array_like of int, shape (n_bins + 1,), optional
        Column edges of the bins (from :func:`binned_profiles`), stored in
        ``column_lo``/``column_hi``; needed by :func:`model_frame`.
    sigma : array_like, optional
        1-sigma uncertainty (ADU) of each profile sample, broadcastable to
        ``profiles``; then the errors are absolute.  By default the noise is
        estimated from the fit residual (like ``curve_fit`` with
        ``absolute_sigma=False``).
    merge_separation : float
        Peaks closer than this many widths are merged (default 1.0).
    min_amp_snr : float
        Minimum ``amp/amp_err`` of both peaks of a double fit (default 3).
    f_test_pvalue : float
        Maximum F-test false-alarm probability for the double fit (default
        0.01: on the demo data 1e-3 kept bins whose peaks are 2.7 widths apart
        single).
    sigma_bounds : (float, float), optional
        Bounds of the widths in pixels; default ``(0.5, span/4)`` with
        ``span`` the extent of the bin's finite rows (at least 1).
    max_nfev : int
        Maximum function evaluations per fit (default 200); a fit not
        converged within it is rejected.

    Returns
    -------
    ProfileFits
        Flags: GOOD, SINGLE, or FAILED (fewer than 5 finite samples or no fit
        converged; parameters NaN).  Never raises on bad data.
    """
    profiles, rows, sigma = _check_inputs(profiles, rows, sigma, sigma_bounds)
    n_bins = profiles.shape[0]
    out = ProfileFits.empty(n_bins, edges)
    for b in range(n_bins):
        d = _bin_data(profiles[b], rows, None if sigma is None else sigma[b], sigma_bounds)
        if d is None:
            continue
        out.n_points[b] = len(d.y)
        fit, flag = _fit_median_bin(d, merge_separation, min_amp_snr, f_test_pvalue, max_nfev)
        if fit is None:
            continue
        ratio = np.nan if flag & FitFlag.SINGLE else _ratio(fit.params)
        out.set_bin(b, fit.params, fit.errors, ratio, fit.chi2_red, len(d.y), flag)
    return out
