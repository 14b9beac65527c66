"""Small statistics shared by the metrics, returning JSON-friendly values.

Every value is a plain Python float or ``None`` (never NaN or inf), so that a
score dict can be written as strict JSON.  The robust spread is
``1.4826 * MAD``: it equals sigma for Gaussian noise.
"""

from __future__ import annotations

import math

import numpy as np

from ..science.robust import MAD_TO_SIGMA

__all__ = ["ROBUST", "as_float", "residual_stats", "error_stats", "robust_std"]

#: MAD -> sigma for a Gaussian (the pipeline's own constant).
ROBUST = MAD_TO_SIGMA


def as_float(x):
    """Plain float, or None for NaN, inf and None.

    Parameters
    ----------
    x : float, numpy scalar or None

    Returns
    -------
    float or None
    """
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def residual_stats(r, oracle=None) -> dict:
    """RMS, robust RMS, median and mean of residuals ``r`` (1D, finite).

    Parameters
    ----------
    r : ndarray
        Residuals, ADU.
    oracle : dict, optional
        The oracle's statistics on the same pixels, for the ratios.

    Returns
    -------
    dict
        ``n``, ``rms`` (``sqrt(mean(r**2))``), ``robust_rms``
        (``1.4826 * median(|r|)``, a robust RMS about zero), ``median``,
        ``mean`` and, with ``oracle``, ``rms_over_oracle`` and
        ``robust_rms_over_oracle``.
    """
    r = np.asarray(r, float)
    out = {"n": int(r.size), "rms": None, "robust_rms": None, "median": None, "mean": None}
    if r.size:
        out.update(rms=as_float(np.sqrt(np.mean(r * r))),
                   robust_rms=as_float(ROBUST * np.median(np.abs(r))),
                   median=as_float(np.median(r)), mean=as_float(np.mean(r)))
    if oracle is not None:
        for key in ("rms", "robust_rms"):
            a, b = out[key], oracle.get(key)
            out[f"{key}_over_oracle"] = as_float(a / b) if a is not None and b else None
    return out


def error_stats(err) -> dict:
    """Median absolute and median signed error of a 1D array (NaNs dropped).

    Parameters
    ----------
    err : array_like
        Errors (estimate - truth).

    Returns
    -------
    dict
        ``n``, ``median_abs_error``, ``median_error``.
    """
    err = np.asarray(err, float)
    err = err[np.isfinite(err)]
    if not err.size:
        return {"n": 0, "median_abs_error": None, "median_error": None}
    return {"n": int(err.size), "median_abs_error": as_float(np.median(np.abs(err))),
            "median_error": as_float(np.median(err))}


def robust_std(x):
    """``1.4826 * MAD`` of the finite values of ``x`` (None if there are none).

    Parameters
    ----------
    x : array_like

    Returns
    -------
    float or None
    """
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return as_float(ROBUST * np.median(np.abs(x - np.median(x)))) if x.size else None
