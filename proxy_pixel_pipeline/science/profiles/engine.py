"""The generic fitting engine shared by stages 3 and 4.

Bounded least squares (``scipy.optimize.least_squares``, trf) of the
double Gaussian through a linear map from the free parameters to the 7
physical ones, with curve_fit-like covariances; input checks, the finite
samples of one bin, start values from the data.  Package-internal: the
public functions are in :mod:`.median` and :mod:`.final`.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import least_squares
from scipy.signal import find_peaks

from .model import _double_gaussian_jac, double_gaussian

# Minimum number of finite samples for each model: one more than its number
# of free parameters, so that the noise can be estimated from the residual.
_MIN_POINTS_SINGLE = 5
_MIN_POINTS_DOUBLE = 8


# Every model is fitted through a linear map from its free parameters theta
# to the 7 physical parameters, phys = M @ theta:
#   double        theta = [a1, m1, s1, a2, d, s2, c]      (mu2 = m1 + d, d >= 0)
#   single        theta = [a, m, s, c]                   (amp2 = 0, mu2 = m, sigma2 = s)
#   fixed ratio r theta = [a2, m1, s1, d, s2, c]          (amp1 = r * a2)
# so the Jacobian is J_phys @ M and the covariance M cov M^T, with no special
# cases in the error propagation.

_M_DOUBLE = np.array([
    [1, 0, 0, 0, 0, 0, 0],
    [0, 1, 0, 0, 0, 0, 0],
    [0, 0, 1, 0, 0, 0, 0],
    [0, 0, 0, 1, 0, 0, 0],
    [0, 1, 0, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
], dtype=float)

_M_SINGLE = np.array([
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
], dtype=float)


def _m_fixed_ratio(ratio):
    return np.array([
        [ratio, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [0, 1, 0, 1, 0, 0],
        [0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ], dtype=float)


class _Fit(NamedTuple):
    params: np.ndarray      # 7 physical parameters
    errors: np.ndarray      # their 1-sigma uncertainties
    ssr: float              # weighted sum of squared residuals
    chi2_red: float
    converged: bool
    at_bound: np.ndarray    # bool per free parameter (least_squares active_mask)


class _Data(NamedTuple):
    y: np.ndarray           # rows of the finite samples
    p: np.ndarray           # profile values
    w: np.ndarray           # weights 1/sigma (ones when no sigma given)
    absolute: bool          # True when sigma was given
    sigma_lo: float
    sigma_hi: float


def _fit_model(data, m, theta0, lower, upper, max_nfev):
    """Bounded least-squares fit of the model ``phys = m @ theta``."""
    y, p, w = data.y, data.p, data.w

    def resid(theta):
        return (double_gaussian(y, *(m @ theta)) - p) * w

    def jac(theta):
        return (_double_gaussian_jac(y, m @ theta) @ m) * w[:, None]

    # Start strictly inside the bounds (trf needs an interior point).
    span = np.where(np.isfinite(upper - lower), upper - lower, 1.0)
    theta0 = np.clip(theta0, lower + 1e-6 * span, upper - 1e-6 * span)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = least_squares(resid, theta0, jac=jac, bounds=(lower, upper), method="trf",
                            x_scale="jac", max_nfev=max_nfev)
    n, k = len(y), len(theta0)
    ssr = float(2.0 * res.cost)
    chi2_red = ssr / (n - k) if n > k else np.nan
    # Covariance as in curve_fit: pseudo-inverse of J^T J through the SVD;
    # a singular Jacobian (degenerate parameters) gives NaN uncertainties.
    _, s, vt = np.linalg.svd(res.jac, full_matrices=False)
    tiny = np.finfo(float).eps * max(res.jac.shape) * (s[0] if s.size else 0.0)
    if s.size == k and s[-1] > tiny and np.isfinite(chi2_red):
        cov = (vt.T / s**2) @ vt
        if not data.absolute:
            cov = cov * chi2_red
        errors = np.sqrt(np.clip(np.diag(m @ cov @ m.T), 0.0, None))
    else:
        errors = np.full(7, np.nan)
    params = m @ res.x
    return _Fit(params, errors, ssr, chi2_red, bool(res.status > 0) and np.all(np.isfinite(params)),
                res.active_mask != 0)


def _bin_data(profile, rows, sigma, sigma_bounds):
    """Finite samples of one bin, or None if there are none."""
    good = np.isfinite(profile)
    if sigma is not None:
        good &= np.isfinite(sigma) & (sigma > 0)
    if not good.any():
        return None
    y = rows[good]
    w = 1.0 / sigma[good] if sigma is not None else np.ones(good.sum())
    span = y[-1] - y[0] + 1.0
    if sigma_bounds is None:
        lo, hi = 0.5, max(span / 4.0, 1.0)
    else:
        lo, hi = (float(v) for v in sigma_bounds)
    return _Data(y, profile[good], w, sigma is not None, lo, hi)


def _check_inputs(profiles, rows, sigma, sigma_bounds):
    profiles = np.asarray(profiles, dtype=float)
    if profiles.ndim == 1:
        profiles = profiles[None, :]
    if profiles.ndim != 2:
        raise ValueError(f"profiles must be 2D (n_bins, n_rows), got shape {profiles.shape}")
    n_rows = profiles.shape[1]
    rows = np.arange(n_rows, dtype=float) if rows is None else np.asarray(rows, dtype=float)
    if rows.shape != (n_rows,) or not np.all(np.isfinite(rows)) or np.any(np.diff(rows) <= 0):
        raise ValueError(f"rows must be {n_rows} finite, strictly increasing row coordinates")
    if sigma is not None:
        sigma = np.broadcast_to(np.asarray(sigma, dtype=float), profiles.shape)
    if sigma_bounds is not None and not 0 < sigma_bounds[0] < sigma_bounds[1]:
        raise ValueError(f"sigma_bounds must be 0 < low < high pixels, got {sigma_bounds}")
    return profiles, rows, sigma


def _start_values(d):
    """Starting values from the data: offset, main peak, second peak.

    Returns ``(single_theta0, double_theta0_list)``; the list is empty when
    no second peak stands out.
    """
    y, p = d.y, d.p
    offset0 = np.percentile(p, 10)
    # Light smoothing of the profile (NaN holes interpolated) so a noise
    # spike is not taken for a peak.
    grid = np.arange(y[0], y[-1] + 1.0)
    sm = gaussian_filter1d(np.interp(grid, y, p), 1.0, mode="nearest")
    i = int(np.argmax(sm))
    a0 = sm[i] - offset0
    if not a0 > 0:
        a0 = max(np.ptp(p), 1e-12)
    # Width from the half-maximum crossing on each side of the main peak.
    half = offset0 + 0.5 * a0
    below_r = np.nonzero(sm[i:] <= half)[0]
    below_l = np.nonzero(sm[:i + 1][::-1] <= half)[0]
    right = below_r[0] if below_r.size else len(sm) - 1 - i
    left = below_l[0] if below_l.size else i
    s0 = np.clip((left + right) / 2.355, d.sigma_lo, d.sigma_hi)
    single = np.array([a0, grid[i], s0, offset0])

    doubles = []
    peaks, props = find_peaks(sm, prominence=0.05 * a0)
    others = [(pr, j) for j, pr in zip(peaks, props["prominences"]) if abs(j - i) >= 2]
    if others:
        j = max(others)[1]
        lo_i, hi_i = sorted((i, j))
        sep = float(grid[hi_i] - grid[lo_i])
        s_each = np.clip(min(s0, 0.5 * sep), d.sigma_lo, d.sigma_hi)
        doubles.append(np.array([max(sm[lo_i] - offset0, 1e-12), grid[lo_i], s_each,
                                 max(sm[hi_i] - offset0, 1e-12), sep, s_each, offset0]))
    return single, doubles


def _split_seed(single_params, sigma_lo, sigma_hi):
    """Double-Gaussian seed from a single fit: two halves either side of it."""
    a, m, s, c = single_params[0], single_params[1], single_params[2], single_params[6]
    s_each = np.clip(0.75 * s, sigma_lo, sigma_hi)
    return np.array([0.6 * a, m - 0.5 * s, s_each, 0.6 * a, s, s_each, c])
