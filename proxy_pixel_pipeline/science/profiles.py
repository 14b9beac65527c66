"""Double-Gaussian fits of the cross-dispersion profile of the CUTE spectral trace.

Stages 3 and 4 of the pipeline.  The CUTE telescope was found defocused on
orbit compared with pre-flight tests (Egan et al. 2023), so the image of the
slit on the CCD is not one Gaussian across the trace but two: the
cross-dispersion (column) profile is well described by

.. math::

    f(y) = A_1 e^{-(y-\\mu_1)^2 / 2\\sigma_1^2}
         + A_2 e^{-(y-\\mu_2)^2 / 2\\sigma_2^2} + c,

where ``y`` is the row (cross-dispersion pixel), ``A`` are peak heights (ADU),
``mu`` centres and ``sigma`` widths (pixels) and ``c`` a constant (the
~1000 ADU bias/background in the Median Frame, ~0 in a background-subtracted
Final Frame).  The two peaks move apart along the dispersion axis and merge
at one end of the frame, where a single Gaussian is fitted instead.

To beat the noise and keep the number of fits small, columns are grouped in
bins (25 columns by default) and each row is replaced by its median over the
bin's columns (:func:`binned_profiles`).  Then

* stage 3, :func:`fit_median_profiles`, fits every bin of the Median Frame
  (per-pixel median of the raw science frames) freely, choosing between the
  single and the double Gaussian;
* stage 4, :func:`fit_final_profiles`, fits every bin of one Final Frame
  (science - background) with the peak ratio ``amp1/amp2`` held at the Median
  Frame's value, starting from the Median Frame fit, and falls back to the
  Median Frame fit scaled to the data when the free fit is not physical;
* :func:`model_frame` turns the fits into a model image used to infill
  empty pixels (:mod:`~proxy_pixel_pipeline.science.infill`).

Conventions: peak 1 is always the one at the lower row (``mu1 <= mu2``, the
fit is parametrized with the separation ``mu2 - mu1 >= 0``); the results are a
:class:`ProfileFits` (one entry per column bin) with bit flags
:class:`FitFlag`.  Everything is vectorized over pixels; Python loops run over
bins only (~82 for a CUTE frame), each fit taking about a millisecond.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import numpy as np
from astropy.table import Table
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import least_squares
from scipy.signal import find_peaks
from scipy.special import fdtrc

from ..flags import FitFlag, flagdoc

__all__ = [
    "FitFlag",
    "ProfileFits",
    "PARAM_NAMES",
    "double_gaussian",
    "bin_edges",
    "binned_profiles",
    "fit_median_profiles",
    "fit_final_profiles",
    "scale_reference",
    "model_frame",
]

PARAM_NAMES = ("amp1", "mu1", "sigma1", "amp2", "mu2", "sigma2", "offset")

# Unit of each fitted quantity in the FITS table (None: dimensionless).
_UNITS = {"amp1": "adu", "amp2": "adu", "offset": "adu",
          "mu1": "pix", "mu2": "pix", "sigma1": "pix", "sigma2": "pix",
          "column_lo": "pix", "column_hi": "pix"}

# Minimum number of finite samples for each model: one more than its number
# of free parameters, so that the noise can be estimated from the residual.
_MIN_POINTS_SINGLE = 5
_MIN_POINTS_DOUBLE = 8


def double_gaussian(y, amp1, mu1, sigma1, amp2, mu2, sigma2, offset):
    """Two Gaussians on a constant, evaluated at rows ``y``.

    Parameters
    ----------
    y : array_like
        Row (cross-dispersion) coordinate, pixels.
    amp1, amp2 : float or array_like
        Peak heights (not areas) of the two Gaussians, ADU.  ``amp2 = 0``
        gives a single Gaussian.
    mu1, mu2 : float or array_like
        Centres, pixels (rows).
    sigma1, sigma2 : float or array_like
        Standard deviations, pixels (CUTE: about 2-5).
    offset : float or array_like
        Constant level, ADU (~1000 in a Median Frame, ~0 in a Final Frame).

    Returns
    -------
    ndarray
        ``amp1*exp(-(y-mu1)**2/(2 sigma1**2)) + amp2*exp(...) + offset``,
        broadcast over all arguments.
    """
    y = np.asarray(y, dtype=float)
    z1 = (y - mu1) / sigma1
    z2 = (y - mu2) / sigma2
    return amp1 * np.exp(-0.5 * z1 * z1) + amp2 * np.exp(-0.5 * z2 * z2) + offset


def _double_gaussian_jac(y, p):
    """Jacobian (n, 7) of :func:`double_gaussian` w.r.t. ``PARAM_NAMES``."""
    a1, m1, s1, a2, m2, s2, _ = p
    z1 = (y - m1) / s1
    z2 = (y - m2) / s2
    g1 = np.exp(-0.5 * z1 * z1)
    g2 = np.exp(-0.5 * z2 * z2)
    return np.column_stack([
        g1, a1 * g1 * z1 / s1, a1 * g1 * z1 * z1 / s1,
        g2, a2 * g2 * z2 / s2, a2 * g2 * z2 * z2 / s2,
        np.ones_like(y),
    ])


# --------------------------------------------------------------------------
# Result container
# --------------------------------------------------------------------------

@dataclasses.dataclass
class ProfileFits:
    """Per-bin results of the column-profile fits (one array entry per bin).

    Attributes
    ----------
    column_lo, column_hi : ndarray of int
        First and one-past-last column of each bin (``-1`` if unknown).
    amp1, mu1, sigma1, amp2, mu2, sigma2, offset : ndarray of float
        Parameters of :func:`double_gaussian` (ADU, pixels); peak 1 is at the
        lower row.
    amp1_err, ..., offset_err : ndarray of float
        1-sigma uncertainties from the fit covariance (NaN if undetermined).
    ratio : ndarray of float
        Peak ratio ``amp1/amp2`` (NaN for single-Gaussian bins).
    chi2_red : ndarray of float
        Reduced chi-square ``sum(r**2/sigma**2)/(n - p)`` when per-pixel
        uncertainties were given; otherwise ``sum(r**2)/(n - p)``, the
        residual variance in ADU**2 that scales the covariance.
    n_points : ndarray of int
        Number of finite samples used.
    flag : ndarray of int
        :class:`FitFlag` bits.
    """

    column_lo: np.ndarray
    column_hi: np.ndarray
    amp1: np.ndarray
    mu1: np.ndarray
    sigma1: np.ndarray
    amp2: np.ndarray
    mu2: np.ndarray
    sigma2: np.ndarray
    offset: np.ndarray
    amp1_err: np.ndarray
    mu1_err: np.ndarray
    sigma1_err: np.ndarray
    amp2_err: np.ndarray
    mu2_err: np.ndarray
    sigma2_err: np.ndarray
    offset_err: np.ndarray
    ratio: np.ndarray
    chi2_red: np.ndarray
    n_points: np.ndarray
    flag: np.ndarray

    @classmethod
    def empty(cls, n_bins, edges=None):
        """All-NaN results flagged FAILED for ``n_bins`` bins.

        Parameters
        ----------
        n_bins : int
            Number of column bins.
        edges : array_like of int, optional
            ``n_bins + 1`` column edges (see :func:`bin_edges`); unknown
            column ranges (``-1``) if omitted.

        Returns
        -------
        ProfileFits
        """
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in ("column_lo", "column_hi"):
                values[f.name] = np.full(n_bins, -1, dtype=np.int64)
            elif f.name == "n_points":
                values[f.name] = np.zeros(n_bins, dtype=np.int64)
            elif f.name == "flag":
                values[f.name] = np.full(n_bins, int(FitFlag.FAILED), dtype=np.int16)
            else:
                values[f.name] = np.full(n_bins, np.nan)
        if edges is not None:
            edges = np.asarray(edges, dtype=np.int64)
            if edges.shape != (n_bins + 1,):
                raise ValueError(f"edges must have {n_bins + 1} entries for {n_bins} bins, "
                                 f"got shape {edges.shape}")
            values["column_lo"] = edges[:-1].copy()
            values["column_hi"] = edges[1:].copy()
        return cls(**values)

    def __len__(self):
        return len(self.flag)

    @property
    def params(self):
        """ndarray (n_bins, 7): the parameters in ``PARAM_NAMES`` order."""
        return np.column_stack([getattr(self, n) for n in PARAM_NAMES])

    @property
    def errors(self):
        """ndarray (n_bins, 7): the uncertainties in ``PARAM_NAMES`` order."""
        return np.column_stack([getattr(self, n + "_err") for n in PARAM_NAMES])

    def _set_bin(self, i, params, errors, ratio, chi2_red, n_points, flag):
        for name, v, e in zip(PARAM_NAMES, params, errors):
            getattr(self, name)[i] = v
            getattr(self, name + "_err")[i] = e
        self.ratio[i] = ratio
        self.chi2_red[i] = chi2_red
        self.n_points[i] = n_points
        self.flag[i] = int(flag)

    def to_table(self):
        """Convert to an `~astropy.table.Table` (upper-case column names).

        Returns
        -------
        astropy.table.Table
            Columns COLUMN_LO, COLUMN_HI, AMP1, AMP1_ERR, ..., RATIO,
            CHI2_RED, N_POINTS, FLAG, with units 'adu' / 'pix' where they
            apply; ready for ``table.write(path, format='fits')``.
        """
        t = Table()
        for f in dataclasses.fields(self):
            base = f.name[:-4] if f.name.endswith("_err") else f.name
            t[f.name.upper()] = getattr(self, f.name)
            if base in _UNITS:
                t[f.name.upper()].unit = _UNITS[base]
        # FITS COMMENT cards (kept under 72 characters so they do not wrap).
        t.meta["comments"] = [
            "Column-profile fits, one row per column bin [COLUMN_LO, COLUMN_HI).",
            "Model: AMP1*G(MU1,SIGMA1) + AMP2*G(MU2,SIGMA2) + OFFSET,",
            "  G(mu,sigma) = exp(-(y-mu)^2/(2 sigma^2)); RATIO = AMP1/AMP2.",
            f"FLAG bits: {flagdoc(FitFlag)}.",
        ]
        return t

    @classmethod
    def from_table(cls, table):
        """Build from a table written by :meth:`to_table` (e.g. read from FITS).

        Parameters
        ----------
        table : astropy.table.Table or QTable
            Must have every column of :meth:`to_table` (case-insensitive);
            units are dropped.

        Returns
        -------
        ProfileFits
        """
        names = {n.upper(): n for n in table.colnames}
        values = {}
        for f in dataclasses.fields(cls):
            key = f.name.upper()
            if key not in names:
                raise ValueError(f"profile-fit table has no column {key}")
            col = np.asarray(getattr(table[names[key]], "value", table[names[key]]))
            if f.name in ("column_lo", "column_hi", "n_points"):
                col = col.astype(np.int64)
            elif f.name == "flag":
                col = col.astype(np.int16)
            else:
                col = col.astype(float)
            values[f.name] = col.copy()
        return cls(**values)


# --------------------------------------------------------------------------
# Binning
# --------------------------------------------------------------------------

def bin_edges(n_columns, bin_width):
    """Column edges of bins of ``bin_width`` columns, keeping a partial last bin.

    Parameters
    ----------
    n_columns : int
        Number of columns of the frame (CUTE: 2048).
    bin_width : int
        Columns per bin (pipeline default 25).

    Returns
    -------
    ndarray of int, shape (n_bins + 1,)
        ``[0, w, 2w, ..., n_columns]``; the last bin may be narrower
        (2048 columns / 25 gives 82 bins, the last 23 wide).
    """
    n_columns = int(n_columns)
    bin_width = int(bin_width)
    if n_columns < 1 or bin_width < 1:
        raise ValueError(f"n_columns and bin_width must be >= 1, got {n_columns}, {bin_width}")
    return np.append(np.arange(0, n_columns, bin_width), n_columns).astype(np.int64)


def _nanmedian_last_axis(a):
    """NaN-ignoring median along the last axis, NaN where all are NaN.

    Sorting puts NaN last, so the median of the ``k`` finite values is read
    at positions ``(k-1)//2`` and ``k//2``: much faster than ``np.nanmedian``
    on many short rows and silent on all-NaN slices.
    """
    s = np.sort(a, axis=-1)
    k = np.isfinite(s).sum(axis=-1)
    lo = np.clip((k - 1) // 2, 0, None)[..., None]
    hi = np.clip(k // 2, 0, a.shape[-1] - 1)[..., None]
    med = 0.5 * (np.take_along_axis(s, lo, -1) + np.take_along_axis(s, hi, -1))[..., 0]
    med[k == 0] = np.nan
    return med


def binned_profiles(frame, bin_width):
    """Median cross-dispersion profile of each bin of columns.

    Parameters
    ----------
    frame : array_like, shape (n_rows, n_columns)
        Image in ADU, rows = cross-dispersion, columns = dispersion; NaN (and
        other non-finite values) mark empty pixels and are ignored.
    bin_width : int
        Columns per bin (pipeline default 25).

    Returns
    -------
    edges : ndarray of int, shape (n_bins + 1,)
        Column edges, see :func:`bin_edges`.
    profiles : ndarray, shape (n_bins, n_rows)
        ``profiles[b, r]`` = median over the bin's columns of row ``r``;
        NaN where the row has no finite pixel in the bin.
    """
    frame = np.asarray(frame, dtype=float)
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2D, got shape {frame.shape}")
    n_rows, n_columns = frame.shape
    edges = bin_edges(n_columns, bin_width)
    n_bins = len(edges) - 1
    # Pad the partial last bin with NaN so all bins reshape to one cube.
    padded = np.full((n_rows, n_bins * int(bin_width)), np.nan)
    padded[:, :n_columns] = np.where(np.isfinite(frame), frame, np.nan)
    cube = padded.reshape(n_rows, n_bins, int(bin_width))
    return edges, np.ascontiguousarray(_nanmedian_last_axis(cube).T)


# --------------------------------------------------------------------------
# Fitting machinery
# --------------------------------------------------------------------------
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


def _ratio(params):
    return params[0] / params[3] if params[3] > 0 else np.nan


# --------------------------------------------------------------------------
# Stage 3: Median Frame
# --------------------------------------------------------------------------

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
        out._set_bin(b, fit.params, fit.errors, ratio, fit.chi2_red, len(d.y), flag)
    return out


# --------------------------------------------------------------------------
# Stage 4: Final Frames
# --------------------------------------------------------------------------

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
            out._set_bin(b, params, errors, ratio, np.nan, 0,
                         base | FitFlag.FALLBACK | FitFlag.FAILED)
            continue
        params, errors, chi2_red, flag = _fit_final_bin(d, rp, ref_errors[b], ref_single,
                                                         scale_limits, max_nfev)
        out._set_bin(b, params, errors, ratio, chi2_red, len(d.y), flag)
    return out


# --------------------------------------------------------------------------
# Model image
# --------------------------------------------------------------------------

def model_frame(fits, shape, rows=None):
    """Evaluate the fitted profiles over every pixel of each bin.

    Parameters
    ----------
    fits : ProfileFits
        Fits with known column ranges (``column_lo``/``column_hi``).
    shape : (int, int)
        ``(n_rows, n_columns)`` of the frame (CUTE: 515 x 2048).
    rows : array_like, optional
        Row coordinate of each image row; default ``0..n_rows-1`` (the
        coordinates the fits were made in).

    Returns
    -------
    ndarray, shape ``shape``
        Model in ADU; each bin's model is constant along its columns.  NaN in
        columns covered by no bin or by a bin with NaN parameters (FAILED).
    """
    n_rows, n_columns = (int(v) for v in shape)
    lo = np.asarray(fits.column_lo, dtype=np.int64)
    hi = np.asarray(fits.column_hi, dtype=np.int64)
    if np.any(lo < 0) or np.any(hi < lo):
        raise ValueError("fits have unknown column ranges: pass edges= when fitting")
    y = np.arange(n_rows, dtype=float) if rows is None else np.asarray(rows, dtype=float)
    if y.shape != (n_rows,):
        raise ValueError(f"rows must have {n_rows} entries")
    # Map each column to its bin (-1: none), then broadcast rows x columns.
    bin_of_col = np.full(n_columns, -1, dtype=np.int64)
    for b in np.argsort(lo, kind="stable"):
        bin_of_col[lo[b]:min(hi[b], n_columns)] = b
    covered = bin_of_col >= 0
    params = np.full((n_columns, 7), np.nan)
    params[covered] = fits.params[bin_of_col[covered]]
    return double_gaussian(y[:, None], *(params[:, j][None, :] for j in range(7)))
