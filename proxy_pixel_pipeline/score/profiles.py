"""Profile-fit metrics: stage 3 (and 4) double-Gaussian fits vs the true profile (``profile``).

The truth PROFILE table (per column) is averaged over each bin's columns; the
true peak ratio per column is ``AMP2/AMP1``, averaged likewise.  The Median
Frame's amplitudes are medians over frames and columns, so only shapes are
compared.

* *Double* bins (flag without SINGLE and FAILED): errors of ``mu1``,
  ``mu2``, ``sigma1``, ``sigma2`` (pix), separation ``mu2 - mu1`` (pix) and
  amplitude ratio ``amp2/amp1``.
* *Single* bins (flag SINGLE; the truth still has two close peaks): errors
  of the fitted centre ``mu1`` against the true profile's centroid and of
  ``sigma1`` against its RMS width.
* *All* non-failed bins: centroid and RMS width of the fitted profile
  against the truth's, where for peaks of height ``a_i``, centre ``mu_i``
  and width ``s_i`` (area weights ``w_i = a_i s_i``) centroid =
  ``sum w_i mu_i / sum w_i`` and RMS width = ``sqrt(sum w_i (s_i**2 +
  mu_i**2) / sum w_i - centroid**2)``.

Each quantity reports ``median_abs_error`` and ``median_error`` (signed, fit
- truth), and each stage the number of bins that are double, single, failed
and FALLBACK (:class:`~proxy_pixel_pipeline.flags.FitFlag`).  Stage 4
(``final_fits/``) is scored the same way, pooled over frames (``n_frames``).
"""

from __future__ import annotations

import numpy as np

from ..errors import PipelineError
from ..flags import FitFlag
from ..io.products import read_profile_fits
from ..science.profiles import ProfileFits
from .inputs import stage_number
from .metric import Metric, number
from .stats import error_stats

__all__ = ["profile_section", "profile_errors", "truth_bins", "centroid_width", "PROFILE"]


def centroid_width(a1, m1, s1, a2, m2, s2):
    """Centroid and RMS width of two Gaussians (area weights ``|a s|``); NaN-safe.

    Parameters
    ----------
    a1, m1, s1, a2, m2, s2 : ndarray
        Heights, centres and widths of the two peaks; a NaN ``a2`` (single
        Gaussian) counts as 0.

    Returns
    -------
    centroid, width : ndarray
    """
    a2 = np.where(np.isfinite(a2), a2, 0.0)
    w1, w2 = np.abs(a1 * s1), np.abs(a2 * s2)
    m2 = np.where(w2 > 0, m2, 0.0)
    s2 = np.where(w2 > 0, s2, 0.0)
    tot = w1 + w2
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (w1 * m1 + w2 * m2) / tot
        var = (w1 * (s1 ** 2 + m1 ** 2) + w2 * (s2 ** 2 + m2 ** 2)) / tot - c ** 2
    return c, np.sqrt(np.clip(var, 0, None))


def truth_bins(profile, lo, hi) -> dict:
    """Truth PROFILE quantities averaged over the columns [lo, hi) of each bin.

    Parameters
    ----------
    profile : dict
        The truth ``PROFILE`` table (column name to ndarray).
    lo, hi : ndarray of int
        First and one-past-last column of each bin.

    Returns
    -------
    dict
        ``amp1``, ``mu1``, ``sig1``, ``amp2``, ``mu2``, ``sig2``, ``ratio``
        (``amp2/amp1``), ``centroid`` and ``width``, one value per bin (NaN
        for a bin without truth columns).
    """
    col = np.asarray(profile["COLUMN"], np.int64)
    quant = {k.lower(): np.asarray(profile[k], float) for k in
             ("AMP1", "MU1", "SIG1", "AMP2", "MU2", "SIG2")}
    quant["ratio"] = quant["amp2"] / quant["amp1"]
    quant["centroid"], quant["width"] = centroid_width(quant["amp1"], quant["mu1"], quant["sig1"],
                                                       quant["amp2"], quant["mu2"], quant["sig2"])
    out = {k: np.full(len(lo), np.nan) for k in quant}
    # Prefix sums give every bin's mean without a loop over bins.
    order = np.argsort(col)
    col = col[order]
    first = np.searchsorted(col, lo)
    last = np.searchsorted(col, hi)
    n = last - first
    for k, v in quant.items():
        c = np.r_[0.0, np.cumsum(v[order])]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[k] = np.where(n > 0, (c[last] - c[first]) / np.maximum(n, 1), np.nan)
    return out


def profile_errors(fit, truth) -> dict:
    """Errors of one set of fits against per-bin truth.

    Parameters
    ----------
    fit : ProfileFits
    truth : dict
        From :func:`truth_bins`, one value per bin of ``fit``.

    Returns
    -------
    dict
        Bin counts and the ``double``, ``single`` and ``all`` errors (see
        the module docstring).
    """
    flag = np.asarray(fit.flag, int)
    failed = (flag & FitFlag.FAILED) != 0
    single = ((flag & FitFlag.SINGLE) != 0) & ~failed
    double = ~single & ~failed
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = fit.amp2 / fit.amp1
    cen, wid = centroid_width(fit.amp1, fit.mu1, fit.sigma1, fit.amp2, fit.mu2, fit.sigma2)
    d = double
    return {"n_bins": int(len(flag)), "n_double": int(d.sum()), "n_single": int(single.sum()),
            "n_failed": int(failed.sum()),
            "n_fallback": int(((flag & FitFlag.FALLBACK) != 0).sum()),
            "double": {
                "mu1": error_stats((fit.mu1 - truth["mu1"])[d]),
                "mu2": error_stats((fit.mu2 - truth["mu2"])[d]),
                "sigma1": error_stats((fit.sigma1 - truth["sig1"])[d]),
                "sigma2": error_stats((fit.sigma2 - truth["sig2"])[d]),
                "separation": error_stats(((fit.mu2 - fit.mu1)
                                           - (truth["mu2"] - truth["mu1"]))[d]),
                "amp_ratio": error_stats((ratio - truth["ratio"])[d]),
            },
            "single": {
                "centre": error_stats((fit.mu1 - truth["centroid"])[single]),
                "width": error_stats((fit.sigma1 - truth["width"])[single]),
            },
            "all": {
                "centroid": error_stats((cen - truth["centroid"])[~failed]),
                "rms_width": error_stats((wid - truth["width"])[~failed]),
            }}


def _pooled(fits_):
    """One ProfileFits holding the bins of every frame's fits, frame after frame."""
    return ProfileFits(**{k: np.concatenate([getattr(f, k) for f in fits_])
                          for k in ProfileFits.__dataclass_fields__})


def profile_section(run, notes) -> dict:
    """``{"profile": {"stage3": errors, "stage4": errors}}``, None where not available.

    Parameters
    ----------
    run : RunInputs
    notes : list of str
        Receives what was not scored, and why.
    """
    layout, edges, table = run.layout, run.edges, run.truth.tables["PROFILE"]
    median_stage, final_stage = stage_number("median_fits"), stage_number("final_fits")

    def truth_for(fit):
        lo, hi = np.asarray(fit.column_lo), np.asarray(fit.column_hi)
        if np.any(lo < 0) or np.any(hi <= lo):      # column ranges not recorded
            if len(lo) != len(edges) - 1:
                raise ValueError(f"{len(lo)} fitted bins but {len(edges) - 1} bins of bin_width")
            lo, hi = edges[:-1], edges[1:]
        return truth_bins(table, lo, hi)

    out = {"stage3": None, "stage4": None}
    if layout.median_fits.is_file():
        try:
            fit = read_profile_fits(layout.median_fits)
            out["stage3"] = profile_errors(fit, truth_for(fit))
        except (PipelineError, ValueError, KeyError) as exc:
            notes.append(f"profile: stage {median_stage} fits unreadable ({exc})")
    else:
        notes.append(f"profile: no stage {median_stage} {layout.median_fits.name}, "
                     f"profile not scored")
    paths = [layout.final_fits(p) for p in run.science]
    if all(p.is_file() for p in paths):
        try:
            fits_ = [read_profile_fits(p) for p in paths]
            pooled = _pooled(fits_)
            truth = {k: np.tile(v, len(fits_)) for k, v in truth_for(fits_[0]).items()}
            out["stage4"] = profile_errors(pooled, truth)
            out["stage4"]["n_frames"] = len(fits_)
        except (PipelineError, ValueError, KeyError) as exc:
            notes.append(f"profile: stage {final_stage} fits unreadable ({exc})")
    else:
        notes.append(f"profile: stage {final_stage} final_fits missing, not scored")
    return {"profile": out}


def _table(scores):
    """The profile-fit blocks of the score's table, one per scored stage."""
    prof = scores.get("profile") or {}
    lines = []
    groups = (("double", ("mu1", "mu2", "sigma1", "sigma2", "separation", "amp_ratio")),
              ("single", ("centre", "width")), ("all", ("centroid", "rms_width")))
    for stage in ("stage3", "stage4"):
        p = prof.get(stage)
        if not p:
            continue
        extra = f", pooled over {p['n_frames']} frames" if "n_frames" in p else ""
        lines.append(f"Profile fits, {stage.replace('stage', 'stage ')}{extra}: {p['n_bins']} bins "
                     f"({p['n_double']} double, {p['n_single']} single, {p['n_failed']} failed, "
                     f"{p['n_fallback']} fallback); median |fit - truth| (median fit - truth)")
        for group, keys in groups:
            cells = [f"{k} {number(p[group][k]['median_abs_error'], '{:.3f}', 0)} "
                     f"({number(p[group][k]['median_error'], '{:+.3f}', 0)})" for k in keys]
            lines.append(f"  {group:<7}" + ", ".join(cells))
        lines.append("")
    return lines


#: The ``profile`` section, from the fits files at the end.
PROFILE = Metric(keys=("profile",), scores=("median_fits", "final_fits"), section=profile_section,
                 table=_table)
