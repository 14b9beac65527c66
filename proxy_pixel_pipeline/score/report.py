"""The score as text and as JSON.

:func:`format_table` renders every metric for a terminal, one block per
section (background residual, spectrum and transit depth, profile fits,
cosmic rays, stage 6's spectra and depths, notes); :func:`format_summary`
gives the few headline numbers; :func:`write_score` stores the score dict as
strict JSON (NaN as ``null``).  The metrics themselves are defined in
:mod:`.background`, :mod:`.spectrum`, :mod:`.profiles`, :mod:`.cosmic` and
:mod:`.spectra`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io.atomic import write_text
from .background import METHODS
from .binned_spectrum import ESTIMATES
from .stats import as_float

__all__ = ["format_summary", "format_table", "write_score"]


def _num(x, fmt="{:.3f}", width=10):
    """``x`` formatted and right-aligned in ``width`` characters, ``-`` for None."""
    text = "-" if x is None else fmt.format(x)
    return text.rjust(width)


def format_summary(scores) -> str:
    """The few numbers that say how a run did, as a short table.

    Parameters
    ----------
    scores : dict
        From :func:`~.run.score_run`.

    Returns
    -------
    str
    """
    def get(*keys):
        node = scores
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def num(value, fmt):
        return "-" if value is None else fmt.format(value)

    clean = ("background", "clean")
    depth = ("transit", "estimates")
    rows = [
        ("background residual RMS / oracle (no-CR trace pixels)",
         f"pipeline {num(get(*clean, 'pipeline', 'rms_over_oracle'), '{:.2f}')}, "
         f"after stage 5 {num(get(*clean, 'stage5', 'rms_over_oracle'), '{:.2f}')}, "
         f"master dark {num(get(*clean, 'master_dark', 'rms_over_oracle'), '{:.2f}')}"),
        ("binned spectrum bias (stage 5, median over bins)",
         num(get("spectrum", "estimates", "final", "median_bias"), "{:+.2%}")),
        ("transit depth (stage 5) vs injected",
         f"{num(get(*depth, 'final', 'depth'), '{:.4f}')} "
         f"± {num(get(*depth, 'final', 'depth_err'), '{:.4f}')}"
         f" vs {num(get('transit', 'injected'), '{:.4f}')} "
         f"(master dark {num(get(*depth, 'master_dark', 'depth'), '{:.4f}')})"),
        ("cosmic rays (stage 5)",
         f"recall {num(get('cosmic', 'recall'), '{:.2f}')}, "
         f"false-positive rate {num(get('cosmic', 'false_positive_rate'), '{:.1e}')}"),
        ("white-light depth (stage 6) vs injected",
         f"{num(get('spectra', 'depth'), '{:.4f}')} "
         f"± {num(get('spectra', 'depth_err'), '{:.4f}')}"
         f" vs {num(get('spectra', 'injected'), '{:.4f}')} "
         f"(pull {num(get('spectra', 'depth_pull'), '{:+.2f}')}; "
         f"error / oracle's {num(get('spectra', 'depth_err_over_oracle'), '{:.2f}')})"),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows) + "\n"


def format_table(scores) -> str:
    """Render a score dict (from :func:`~.run.score_run`) as a plain-text table.

    Parameters
    ----------
    scores : dict

    Returns
    -------
    str
        Several blocks (background residual, spectrum and transit depth,
        profile, cosmic rays, stage 6's spectra, notes), one line each per
        method; ``-`` marks
        a metric that could not be computed.
    """
    lines = _run_lines(scores.get("run", {}))
    if scores.get("background"):
        lines += _background_lines(scores["background"])
    if scores.get("spectrum") and scores.get("transit"):
        lines += _spectrum_lines(scores["spectrum"], scores["transit"])
    lines += _profile_lines(scores.get("profile") or {})
    if scores.get("cosmic"):
        lines += _cosmic_lines(scores["cosmic"])
    if scores.get("spectra"):
        lines += _spectra_lines(scores["spectra"])
    lines += [f"note: {note}" for note in scores.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def _run_lines(run):
    return [f"Score of {run.get('output_dir')} against {run.get('truth_dir')}",
            f"  {run.get('n_science')} science frames, {run.get('n_trace_pixels')} trace pixels, "
            f"preset {run.get('preset')}, seed {run.get('seed')}",
            f"  background from K = {run.get('proxy_count')} proxies per pixel "
            f"({run.get('proxy_method')} rule, combined by {run.get('proxy_combine')}"
            f"{', with offsets' if run.get('proxy_offset') else ''})", ""]


def _stats_text(st):
    """``RMS a, robust RMS b, median c`` of a residual_stats dict."""
    return (f"RMS {_num(st['rms'], width=0)}, robust RMS {_num(st['robust_rms'], width=0)}, "
            f"median {_num(st['median'], width=0)}")


def _background_lines(bg):
    lines = ["In-trace background residual, ADU (image - true signal; same pixels per row)",
             f"  {'pixels':<20}{'statistic':<12}" + "".join(
                 h.rjust(12) for h in ("pipeline", "master dark", "oracle", "stage 5"))]
    rows = (("rms", "RMS"), ("robust_rms", "robust RMS"), ("median", "median"),
            ("rms_over_oracle", "RMS/oracle"), ("robust_rms_over_oracle", "rob/oracle"))
    for kind, label in (("clean", "no CR"), ("clean_proxy_ok", "no CR, proxy ok"),
                        ("cosmic", "CR hit")):
        block = bg.get(kind)
        if not block:
            continue
        n = (block.get("oracle") or {}).get("n")
        for j, (key, name) in enumerate(rows):
            cells = []
            for m in METHODS:
                st = block.get(m)
                val = None if st is None else (1.0 if m == "oracle" and "over" in key
                                               else st.get(key))
                cells.append(_num(val, "{:.3f}", 12))
            tag = label if j == 0 else f"({n})" if j == 1 else ""
            lines.append(f"  {tag:<20}{name:<12}" + "".join(cells))
    if bg.get("infilled"):
        lines.append(f"  stage-5 infilled pixels ({bg['infilled']['n']}): "
                     f"{_stats_text(bg['infilled'])}")
    if bg.get("proxy_cr_fraction") is not None:
        lines.append(f"  no-CR pixels whose proxy had a cosmic ray: "
                     f"{100 * bg['proxy_cr_fraction']:.2f} %")
    if bg.get("proxy_match_error"):
        lines.append(f"  proxy match error (true background of pixel - of proxy): "
                     f"{_stats_text(bg['proxy_match_error'])}")
    return lines + [""]


_ESTIMATE_LABELS = {"final": "stage 5 final", "stage2": "stage 2 (truth-fill)",
                    "master_dark": "master dark (t-fill)", "oracle": "oracle (truth-fill)",
                    "oracle_no_cr": "oracle - CR (t-fill)", "match_only": "match error only",
                    "truth": "truth signal"}


def _spectrum_lines(spec, tr):
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
            _num(s["median_bias"], "{:+.4f}", 11), _num(s["bias_scatter"], "{:.4f}", 11),
            _num(s["white_bias"], "{:+.4f}", 11), _num(s["frame_scatter"], "{:.4f}", 11),
            _num(s["coverage"], "{:.4f}", 11), _num(d["depth"], "{:.4f}", 11),
            _num(d["depth_err"], "{:.4f}", 11), _num(d["n_sigma"], "{:+.2f}", 11)]))
    lines.append(f"  trace mask holds {_num(spec['mask_flux_fraction'], '{:.4f}', 0)} "
                 f"of the true flux")
    return lines + [""]


def _profile_lines(prof):
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
            cells = [f"{k} {_num(p[group][k]['median_abs_error'], '{:.3f}', 0)} "
                     f"({_num(p[group][k]['median_error'], '{:+.3f}', 0)})" for k in keys]
            lines.append(f"  {group:<7}" + ", ".join(cells))
        lines.append("")
    return lines


def _cosmic_lines(cr):
    rec = _num(cr["recall"], "{:.3f}", 0)
    fpr = _num(cr["false_positive_rate"], "{:.2e}", 0)
    prec = _num(cr["precision"], "{:.3f}", 0)
    return [f"Cosmic rays (stage 5 COSMIC mask vs truth deposits > {cr['nsigma']:g} sigma)",
            f"  recall {rec} ({cr['n_found']}/{cr['n_truth']}), false-positive rate {fpr} "
            f"({cr['n_false']}/{cr['n_non_cr']}), precision {prec}; faint deposits "
            f"flagged {cr['n_faint_flagged']}/{cr['n_faint']}",
            *(f"  {name:<9} alone: recall {_num(d['recall'], '{:.3f}', 0)}, false-positive rate "
              f"{_num(d['false_positive_rate'], '{:.2e}', 0)}"
              for name, d in cr.get("by_detector", {}).items()),
            f"  hit pixels left above {cr['nsigma']:g} sigma after stage 5: "
            f"{_num(cr.get('left_above'), '{:.4f}', 0)}", ""]


def _spectra_lines(sp):
    """The ``spectra`` section (stage 6 against the truth and the oracle)."""
    def ratio(key):
        return _num(sp.get(key), "{:.2f}", 0)

    lines = [f"Stage 6 spectra ({sp['n_values']} frame-columns; pull = (flux - true) / error) and "
             f"light curves (oracle: true background, profile and cosmic rays)",
             f"  pull width: optimal {_num(sp['pull_width'], '{:.3f}', 0)} (median pull "
             f"{_num(sp['pull_median'], '{:+.3f}', 0)}, bias {_num(sp['bias'], '{:+.3%}', 0)}), "
             f"box {_num(sp['box_pull_width'], '{:.3f}', 0)} "
             f"(bias {_num(sp['box_bias'], '{:+.3%}', 0)})",
             f"  white light, out-of-transit scatter: optimal "
             f"{_num(sp['white_scatter'], '{:.2e}', 0)} ({ratio('white_scatter_over_oracle')}x "
             f"oracle), box {_num(sp['white_box_scatter'], '{:.2e}', 0)} "
             f"({ratio('white_box_scatter_over_oracle')}x), oracle "
             f"{_num(sp['oracle_white_scatter'], '{:.2e}', 0)}"]
    if "depth" in sp:
        lines += [f"  white depth {_num(sp['depth'], '{:.5f}', 0)} ± "
                  f"{_num(sp['depth_err'], '{:.5f}', 0)} (injected {sp['injected']:.4f}, pull "
                  f"{_num(sp['depth_pull'], '{:+.2f}', 0)}); oracle "
                  f"{_num(sp['oracle_depth'], '{:.5f}', 0)} ± "
                  f"{_num(sp['oracle_depth_err'], '{:.5f}', 0)}, error / oracle's "
                  f"{ratio('depth_err_over_oracle')}",
                  f"  channel depth pulls over {sp['n_channels']} channels: spread "
                  f"{_num(sp['channel_pull_spread'], '{:.2f}', 0)}, mean "
                  f"{_num(sp['channel_pull_mean'], '{:+.2f}', 0)}"]
    return lines + [""]


def _jsonable(obj):
    """Replace NaN/inf by None and numpy scalars by Python ones, recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return as_float(obj)
    return obj


def write_score(scores, path) -> Path:
    """Write the score as JSON, atomically (temporary file, then rename).

    Parameters
    ----------
    scores : dict
        From :func:`~.run.score_run`.
    path : str or Path
        Destination, normally ``output_dir/score.json``; its folder is
        created if needed.

    Returns
    -------
    Path
    """
    return write_text(path, json.dumps(_jsonable(scores), indent=2, allow_nan=False) + "\n")
