"""Spectrum metrics: bias of the binned spectrum (``spectrum``) and the transit depth (``transit``).

Binned spectrum
---------------
Column bins of the config's ``bin_width`` (last bin possibly narrower).  For
estimate ``E``, frame *f* and bin *b*: ``E[f, b]`` = sum of the image over
the trace pixels of the bin's columns and ``T[f, b]`` the same sum of
``SIG``.  Per-bin bias ``beta_b = sum_f E[f, b] / sum_f T[f, b] - 1`` (bias
of the time-averaged spectrum).  Reported: ``median_bias`` = median over bins
of ``beta_b``; ``bias_scatter`` = 1.4826 * MAD over bins of ``beta_b``;
``white_bias`` = ``sum E / sum T - 1`` over all bins and frames;
``frame_scatter`` = 1.4826 * MAD over (f, b) of ``E/T - 1 - beta_b`` (the
per-frame, per-bin noise); ``coverage`` = fraction of in-trace, not missing
pixel samples the estimate had a finite value for before any filling;
``bin_bias`` lists every ``beta_b``.  Estimates:

* ``final``  ``F5`` (every trace pixel has a value after infill; non-finite
  values, if any, count as 0 and lower ``coverage``);
* ``stage2`` ``F2`` with its empty pixels given their true value ``SIG`` (so
  that only the background subtraction is judged, not the infill);
* ``master_dark`` ``S - MD`` and ``oracle`` ``S - BG``, missing pixels
  likewise filled with ``SIG``.  The oracle still holds the cosmic rays;
* ``oracle_no_cr`` ``S - BG - CR`` (filled likewise): only the shot and read
  noise are left, the floor of any method;
* ``match_only`` ``SIG + BG - BG_proxy`` (see the background's
  ``proxy_match_error``; pixels without a proxy hold ``SIG``): the noise-free
  systematic error the stage-1 matches alone leave in the spectrum and the
  depth;
* ``truth`` ``SIG`` itself (zero bias and the injected depth: checks the
  bookkeeping).

``mask_flux_fraction`` = ``sum T`` / sum over frames and columns of
``FLUX_E / GAIN * FLUX_SCALE`` (truth SPECTRUM): the part of the true flux
inside the trace mask (close to 1).

Transit depth
-------------
White-light flux ``W_f`` = sum of ``E[f, b]`` over bins.  With the truth
FRAMES table's TRANSIT flags: ``depth = 1 - mean(W_in) / mean(W_out)``.  Its
uncertainty assumes every frame scatters like the out-of-transit frames,
``s = std(W_out, ddof=1)``: ``depth_err = (mean_in / mean_out) * sqrt(s**2 /
(n_in mean_in**2) + s**2 / (n_out mean_out**2))``.  ``error = depth -
injected`` (truth header ``DEPTH``; for a limb-darkened transit the depth the
same estimate gives on the truth's noiseless ``TRANSIT_FLUX``) and
``n_sigma = error / depth_err``, for each estimate of the spectrum.
"""

from __future__ import annotations

import math

import numpy as np

from .metric import Metric, lookup, number
from .stats import as_float, robust_std

__all__ = ["ESTIMATES", "SpectrumMetrics", "spectrum_stats", "transit_depth", "SPECTRUM"]

#: Spectrum estimates, in the table's order.
ESTIMATES = ("final", "stage2", "master_dark", "oracle", "oracle_no_cr", "match_only", "truth")


class SpectrumMetrics:
    """Accumulates each estimate's binned sums frame by frame.

    Parameters
    ----------
    run : RunInputs
    """

    def __init__(self, run):
        self.run = run
        n_frames, n_bins = len(run.science), len(run.edges) - 1
        self.sums = {e: np.zeros((n_frames, n_bins)) for e in ESTIMATES}
        self.finite = {e: np.zeros(n_frames) for e in ESTIMATES}
        self.n_valid = np.zeros(n_frames)
        self.available = {"truth": True, "oracle": True, "oracle_no_cr": True,
                          "match_only": run.proxies is not None,
                          "master_dark": run.master_dark is not None,
                          "stage2": run.stage2_paths is not None,
                          "final": run.stage5_paths is not None}

    def bin_sum(self, image):
        """Per-bin sum over the trace pixels (non-finite counted as 0)."""
        mask = self.run.mask
        col = np.where(mask & np.isfinite(image), image, 0.0).sum(axis=0)
        return np.add.reduceat(col, self.run.edges[:-1])

    def add(self, frame):
        """Add one :class:`~.inputs.Frame`."""
        i, sig, sci, valid = frame.index, frame.signal, frame.science, frame.valid
        finite = self.finite
        self.n_valid[i] = valid.sum()

        def filled(image):
            return np.where(np.isfinite(image), image, sig)

        estimates = {"truth": sig, "oracle": filled(sci - frame.background),
                     "oracle_no_cr": filled(sci - frame.background - frame.cosmic)}
        finite["truth"][i] = self.n_valid[i]
        finite["oracle"][i] = finite["oracle_no_cr"][i] = (valid & np.isfinite(sci)).sum()
        if frame.proxy_background is not None:
            estimates["match_only"] = filled(sig + frame.background - frame.proxy_background)
            finite["match_only"][i] = (valid & np.isfinite(frame.proxy_background)).sum()
        if frame.master_dark is not None:
            estimates["master_dark"] = filled(sci - frame.master_dark)
            finite["master_dark"][i] = (valid & np.isfinite(sci - frame.master_dark)).sum()
        if frame.stage2 is not None:
            estimates["stage2"] = filled(frame.stage2)
            finite["stage2"][i] = (valid & np.isfinite(frame.stage2)).sum()
        if frame.stage5 is not None:
            estimates["final"] = frame.stage5
            finite["final"][i] = (valid & np.isfinite(frame.stage5)).sum()
        for e, image in estimates.items():
            self.sums[e][i] = self.bin_sum(image)

    def result(self, notes) -> dict:
        """``{"spectrum": section, "transit": section}`` (notes receive what was not scored)."""
        run, truth = self.run, self.run.truth
        truth_sum = self.sums["truth"]
        spec_e = np.asarray(truth.tables["SPECTRUM"]["FLUX_E"], float)
        expected = spec_e.sum() / truth.gain * run.flux_scale.sum()
        fraction = as_float(truth_sum.sum() / expected) if expected else None
        spectrum = {"bin_width": int(run.cfg.bin_width), "n_bins": int(len(run.edges) - 1),
                    "mask_flux_fraction": fraction, "estimates": {}}
        injected = truth.box_depth_of(run.names)
        transit = {"injected": injected, "n_in": int(run.transit.sum()),
                   "n_out": int((~run.transit).sum()), "estimates": {}}
        n_valid = self.n_valid.sum()
        for e in ESTIMATES:
            if not self.available[e]:
                spectrum["estimates"][e] = None
                transit["estimates"][e] = None
                continue
            coverage = self.finite[e].sum() / n_valid if n_valid else None
            spectrum["estimates"][e] = spectrum_stats(self.sums[e], truth_sum, coverage)
            # Frame-to-frame throughput (a simulated systematic, known here from the truth,
            # as a light-curve fit's systematics model would remove it) divided out.
            transit["estimates"][e] = transit_depth(self.sums[e].sum(axis=1) / run.throughput,
                                                    run.transit, injected)
        if run.transit.all() or not run.transit.any():
            notes.append("transit: need both in- and out-of-transit frames; depth not scored")
        return {"spectrum": spectrum, "transit": transit}


def spectrum_stats(est, truth, coverage) -> dict:
    """Bias statistics of binned sums ``est`` against ``truth``.

    Parameters
    ----------
    est, truth : ndarray, shape (frames, bins)
        ``E[f, b]`` and ``T[f, b]``; bins where some ``T <= 0`` are left out.
    coverage : float or None
        Reported as it is.

    Returns
    -------
    dict
        ``median_bias``, ``bias_scatter``, ``white_bias``, ``frame_scatter``,
        ``coverage``, ``n_bins`` (bins used) and ``bin_bias`` (see the module
        docstring).
    """
    good = np.all(truth > 0, axis=0)
    if not good.any():
        return {"median_bias": None, "bias_scatter": None, "white_bias": None,
                "frame_scatter": None, "coverage": as_float(coverage), "n_bins": 0}
    e, t = est[:, good], truth[:, good]
    beta = e.sum(axis=0) / t.sum(axis=0) - 1.0
    rel = e / t - 1.0 - beta
    return {"median_bias": as_float(np.median(beta)), "bias_scatter": robust_std(beta),
            "white_bias": as_float(e.sum() / t.sum() - 1.0),
            "frame_scatter": robust_std(rel.ravel()),
            "coverage": as_float(coverage), "n_bins": int(good.sum()),
            "bin_bias": [as_float(b) for b in beta]}


def transit_depth(white, transit, injected) -> dict:
    """Transit depth from white-light fluxes and in-transit flags.

    Parameters
    ----------
    white : ndarray, shape (frames,)
        ``W_f``.
    transit : ndarray of bool, shape (frames,)
        In transit.
    injected : float
        The true depth.

    Returns
    -------
    dict
        ``depth``, ``depth_err``, ``error`` and ``n_sigma`` (None where they
        cannot be computed; see the module docstring).
    """
    w_in, w_out = white[transit], white[~transit]
    out = {"depth": None, "depth_err": None, "error": None, "n_sigma": None}
    if not len(w_in) or not len(w_out):
        return out
    m_in, m_out = w_in.mean(), w_out.mean()
    if m_out == 0:
        return out
    depth = 1.0 - m_in / m_out
    out.update(depth=as_float(depth), error=as_float(depth - injected))
    if len(w_out) >= 2 and m_in != 0:
        s = w_out.std(ddof=1)
        if s <= 1e-12 * abs(m_out):        # identical out-of-transit fluxes (the truth)
            s = 0.0
        err = (m_in / m_out) * math.sqrt(s * s / (len(w_in) * m_in * m_in)
                                         + s * s / (len(w_out) * m_out * m_out))
        out["depth_err"] = as_float(err)
        out["n_sigma"] = as_float((depth - injected) / err) if err > 0 else None
    return out


_ESTIMATE_LABELS = {"final": "stage 5 final", "stage2": "stage 2 (truth-fill)",
                    "master_dark": "master dark (t-fill)", "oracle": "oracle (truth-fill)",
                    "oracle_no_cr": "oracle - CR (t-fill)", "match_only": "match error only",
                    "truth": "truth signal"}


def _table(scores):
    """The binned spectrum and transit depth block of the score's table."""
    spec, tr = scores.get("spectrum"), scores.get("transit")
    if not spec or not tr:
        return []
    lines = [f"Binned spectrum ({spec['n_bins']} bins of {spec['bin_width']} columns; "
             f"relative bias, image/truth - 1) and transit depth "
             f"(injected {tr['injected']:.4f}, {tr['n_in']} in / {tr['n_out']} out)",
             f"  {'estimate':<22}" + "".join(h.rjust(11) for h in (
                 "med bias", "bin scat", "white", "frame scat", "coverage", "depth", "± err",
                 "Δ/σ"))]
    for e in ESTIMATES:
        s, d = spec["estimates"].get(e), tr["estimates"].get(e)
        label = f"  {_ESTIMATE_LABELS[e]:<22}"
        if s is None:
            lines.append(label + "not available".rjust(11))
            continue
        lines.append(label + "".join([
            number(s["median_bias"], "{:+.4f}", 11), number(s["bias_scatter"], "{:.4f}", 11),
            number(s["white_bias"], "{:+.4f}", 11), number(s["frame_scatter"], "{:.4f}", 11),
            number(s["coverage"], "{:.4f}", 11), number(d["depth"], "{:.4f}", 11),
            number(d["depth_err"], "{:.4f}", 11), number(d["n_sigma"], "{:+.2f}", 11)]))
    lines.append(f"  trace mask holds {number(spec['mask_flux_fraction'], '{:.4f}', 0)} "
                 f"of the true flux")
    return lines + [""]


def _summary(scores):
    """Headline rows: stage 5's median bias, and its transit depth against the injected one."""
    def value(fmt, *keys):
        return number(lookup(scores, *keys), fmt, 0)

    depth = ("transit", "estimates")
    return [("binned spectrum bias (stage 5, median over bins)",
             value("{:+.2%}", "spectrum", "estimates", "final", "median_bias")),
            ("transit depth (stage 5) vs injected",
             f"{value('{:.4f}', *depth, 'final', 'depth')} "
             f"± {value('{:.4f}', *depth, 'final', 'depth_err')}"
             f" vs {value('{:.4f}', 'transit', 'injected')} "
             f"(master dark {value('{:.4f}', *depth, 'master_dark', 'depth')})")]


#: The ``spectrum`` and ``transit`` sections, frame by frame.
SPECTRUM = Metric(keys=("spectrum", "transit"), scores=("matches", "final_no_infill", "final"),
                  per_frame=SpectrumMetrics, table=_table, summary=_summary)
