"""The ``transit_fit`` section: stage 7's Rp/R* against the truth and against an oracle.

Definitions (``transit_depths.fits``; every visit of a joint fit):

* truth of a channel: ``sqrt(sum_c F_c rp_c**2 / sum_c F_c)`` over its columns
  *c* (``COLUMN_LO``..``COLUMN_HI``), with ``F_c`` the true stellar flux
  (truth ``SPECTRUM`` ``FLUX_E``) and ``rp_c`` the true Rp/R* (truth
  ``TRANSMISSION``; ``sqrt(DEPTH)`` in every column without one);
* ``pull`` = (``RP_RS`` - truth) / error, the error being ``RP_RS_ERR_HI``
  when the fit lies below the truth and ``RP_RS_ERR_LO`` when above;
  ``channel_pull_mean`` and ``channel_pull_spread`` (robust standard
  deviation) over the channels;
* the oracle: every visit's columns optimally extracted from the true
  background-subtracted frames with the true profile
  (:func:`~.inputs.oracle_columns`), the true throughput, slit loss and
  share of the light inside the spectral mask (:func:`~.inputs.mask_fraction`:
  a smeared trace spills beyond it, 0.5 % rms frame to frame on ``wasp189b``
  and ``kelt9b``) divided out, binned into the same channels and fitted with the same
  transit model, the level alone as systematics (least squares):
  ``err_over_oracle`` = the pipeline's error over the oracle's (white and per
  channel, median over channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.fitsio import header_values
from ..io.transit_products import read_depths
from ..runtime import registry
from ..runtime.config import load_config
from ..science import lightcurves as lc
from ..science.transit_fit import CONSTANT_ONLY, Visit, fit_light_curves
from .inputs import mask_fraction, oracle_columns
from .metric import Metric, number
from .stats import as_float, robust_std
from .truth import read_truth

__all__ = ["TRANSIT_FIT", "transit_fit_section", "true_rp_rs"]


def true_rp_rs(truth, column_lo, column_hi):
    """The true Rp/R* of each channel (inclusive column ranges), flux-weighted."""
    flux = np.asarray(truth.tables["SPECTRUM"]["FLUX_E"], float)
    if "TRANSMISSION" in truth.tables:
        rp = np.asarray(truth.tables["TRANSMISSION"]["RP_RS"], float)
    else:
        rp = np.full(flux.shape, np.sqrt(truth.depth))
    out = []
    for lo, hi in zip(column_lo, column_hi):
        w = flux[int(lo):int(hi) + 1]
        out.append(np.sqrt(np.sum(w * rp[int(lo):int(hi) + 1] ** 2) / np.sum(w)))
    return np.asarray(out)


def _oracle(run, configs, depths):
    """The oracle's Rp/R* errors (white first, then the channels) over the visits (the
    run's own visit first: its oracle columns are extracted once for the whole score)."""
    lo, hi = np.asarray(depths["COLUMN_LO"], int), np.asarray(depths["COLUMN_HI"], int)
    edges = np.stack([lo, hi + 1], axis=1)
    per_channel = [[] for _ in range(len(edges))]
    for v, cfg in enumerate(configs):
        if v == 0:
            truth, science, flux = run.truth, run.science, run.oracle_columns
        else:
            truth = read_truth(Path(cfg.source).resolve().parent / "truth")
            science = cfg.science_paths()
            flux = oracle_columns(cfg, truth, cfg.pixel_list("spectral_mask"), science)
        names = [p.name for p in science]
        flux = flux / truth.throughput_of(names)[:, None] / mask_fraction(
            truth, cfg.pixel_list("spectral_mask"), names)
        times = lc.mid_exposure(header_values(science, cfg.time_key),
                                header_values(science, cfg.exptime_key))
        sums = np.stack([np.nansum(flux[:, a:b], axis=1) for a, b in edges], axis=1)
        oot = lc.transit_shape(cfg.transit, cfg.transit_mid, times) <= 1e-9
        for k in range(len(edges)):
            y = sums[:, k] / np.median(sums[oot, k])
            err = np.full_like(y, robust_std(y[oot] - 1.0) if oot.sum() > 2 else np.nan)
            per_channel[k].append(Visit(times=times, flux=y, flux_err=err, t0=cfg.transit_mid,
                                        name=str(v)))
    out = []
    for k, visits in enumerate(per_channel):
        fit = fit_light_curves(visits, configs[0].transit, CONSTANT_ONLY, mode="lsq",
                               seed=(0, k), inflate=False)
        out.append(fit.rp_rs_err)
    return np.asarray(out)


def transit_fit_section(run, notes) -> dict:
    """The ``transit_fit`` section (None without stage 7's products)."""
    cfg, layout, truth = run.cfg, run.layout, run.truth
    if not layout.transit_depths.is_file():
        notes.append(f"transit_fit: no stage 7 products (run {registry.stage(7).script})")
        return {"transit_fit": None}
    depths = read_depths(layout.transit_depths)
    rp, lo_err, hi_err = (np.asarray(depths[k], float) for k in
                          ("RP_RS", "RP_RS_ERR_LO", "RP_RS_ERR_HI"))
    true = true_rp_rs(truth, depths["COLUMN_LO"], depths["COLUMN_HI"])
    err = np.where(rp < true, hi_err, lo_err)
    pulls = (rp - true) / err
    configs = [cfg] + [load_config(p) for p in cfg.joint_visits]
    try:
        oracle = _oracle(run, configs, depths)
    except Exception as exc:            # a visit without truth: the rest of the section stands
        notes.append(f"transit_fit: no oracle ({exc})")
        oracle = np.full(len(rp), np.nan)
    ratio = 0.5 * (lo_err + hi_err) / oracle
    chans = np.arange(1, len(rp))
    finite = chans[np.isfinite(pulls[chans])]
    return {"transit_fit": {
        "n_visits": int(depths["N_VISITS"][0]),
        "white": {"rp_rs": as_float(rp[0]), "err_lo": as_float(lo_err[0]),
                  "err_hi": as_float(hi_err[0]), "truth": as_float(true[0]),
                  "pull": as_float(pulls[0]), "oracle_err": as_float(oracle[0]),
                  "err_over_oracle": as_float(ratio[0])},
        "n_channels": int(len(chans)),
        "channel_pull_mean": as_float(np.mean(pulls[finite])) if len(finite) else None,
        "channel_pull_spread": as_float(robust_std(pulls[finite])) if len(finite) > 2 else None,
        "channel_err_over_oracle": as_float(np.nanmedian(ratio[chans])) if len(chans) else None,
        "channels": [{"channel": str(depths["CHANNEL"][i]).strip(),
                      "rp_rs": as_float(rp[i]), "truth": as_float(true[i]),
                      "pull": as_float(pulls[i]), "err_over_oracle": as_float(ratio[i])}
                     for i in chans]}}


def _table(scores) -> list:
    s = scores.get("transit_fit")
    if s is None:
        return []
    w = s["white"]
    return [f"Stage 7 transit fit ({s['n_visits']} visit(s); truth: flux-weighted Rp/R* of the "
            f"columns)",
            f"  white Rp/R*                {number(w['rp_rs'], width=0)} "
            f"-{number(w['err_lo'], width=0)} +{number(w['err_hi'], width=0)}  truth "
            f"{number(w['truth'], width=0)}  pull {number(w['pull'], width=0)}",
            f"  white error / oracle's     {number(w['err_over_oracle'], width=0)}",
            f"  channels: {s['n_channels']}, pull mean {number(s['channel_pull_mean'], width=0)}, "
            f"spread {number(s['channel_pull_spread'], width=0)}, error / oracle's (median) "
            f"{number(s['channel_err_over_oracle'], width=0)}", ""]


def _summary(scores) -> list:
    s = scores.get("transit_fit")
    if s is None:
        return []
    w = s["white"]
    return [("white Rp/R* (stage 7) vs truth",
             f"{number(w['rp_rs'], '{:.4f}', 0)} -{number(w['err_lo'], '{:.4f}', 0)} "
             f"+{number(w['err_hi'], '{:.4f}', 0)} vs {number(w['truth'], '{:.4f}', 0)} (pull "
             f"{number(w['pull'], '{:+.2f}', 0)}; error / oracle's "
             f"{number(w['err_over_oracle'], '{:.2f}', 0)}; channel pulls: mean "
             f"{number(s['channel_pull_mean'], '{:+.2f}', 0)}, spread "
             f"{number(s['channel_pull_spread'], '{:.2f}', 0)} over {s['n_channels']})")]


#: The ``transit_fit`` section, from stage 7's products at the end.
TRANSIT_FIT = Metric(keys=("transit_fit",), scores=("transit_depths",),
                     section=transit_fit_section, table=_table, summary=_summary)
