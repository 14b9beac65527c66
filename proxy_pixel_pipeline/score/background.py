"""Background metrics: the in-trace background residual (section ``background``, ADU).

Pixels: in the trace, not missing, with ``F2``, ``S`` and ``MD`` finite (so
every method is judged on exactly the same pixels).  They are split into
*clean* pixels (``CR == 0``, key ``clean``) and *CR-hit* pixels (``CR > 0``,
key ``cosmic``), pooled over all science frames; with a stage-1 match table
also ``clean_proxy_ok``: clean pixels none of whose proxies was hit by a
cosmic ray in that frame (such a hit leaves a negative residual the oracle
does not have).  Residuals per method:

* ``pipeline``    ``F2 - SIG`` (proxy background subtraction, stage 2);
* ``master_dark`` ``S - MD - SIG`` (the classical baseline);
* ``oracle``      ``S - BG - SIG`` (the true background removed: only the
  pixel's own shot and read noise, plus the cosmic ray on CR-hit pixels, is
  left -- the irreducible noise);
* ``stage5``      ``F5 - SIG`` on the same pixels (after negative-pixel
  infill and cosmic-ray cleaning).

Statistics of each residual ``r`` (:func:`~.stats.residual_stats`):
``rms = sqrt(mean(r**2))``, ``robust_rms = 1.4826 * median(|r|)`` (a robust
RMS about zero: equals sigma for zero-mean Gaussian noise, insensitive to a
few outliers but not to a bias), ``median``, ``mean``, and the ratios
``rms_over_oracle`` and ``robust_rms_over_oracle`` to the oracle's values on
the same pixels.

Also reported:

* ``infilled``: the same statistics of ``F5 - SIG`` on the in-trace, not
  missing pixels that stage 5 infilled (its ``INFILLED`` mask);
* ``proxy_cr_fraction``: the fraction of clean pixels one of whose proxies
  (stage 1) was hit by a cosmic ray in that frame;
* ``proxy_match_error``: statistics of ``BG - BG_proxy`` over the trace
  pixels that have a proxy, pooled over frames (``BG_proxy``: see
  :mod:`.inputs`): the noise-free error of the background the matches
  predict, i.e. the quality of stage 1 alone.

A population or method without data is ``None``.
"""

from __future__ import annotations

import numpy as np

from .inputs import stage_number
from .metric import Metric, lookup, number
from .stats import as_float, residual_stats

__all__ = ["METHODS", "POPULATIONS", "BackgroundMetrics", "BACKGROUND"]

#: Residuals compared, in the table's order.
METHODS = ("pipeline", "master_dark", "oracle", "stage5")
#: Pixel populations, in the table's order.
POPULATIONS = ("clean", "clean_proxy_ok", "cosmic")


class BackgroundMetrics:
    """Accumulates the background residuals frame by frame.

    Parameters
    ----------
    run : RunInputs
    """

    def __init__(self, run):
        self.run = run
        self.residuals = {kind: {m: [] for m in METHODS} for kind in POPULATIONS}
        self.infilled, self.match_error = [], []
        self.proxy_cr = [0, 0]            # clean pixels with a CR-hit proxy, clean pixels
        self.has_proxy = (None if run.proxies is None
                          else run.mask & run.proxies.present.any(axis=0))

    def add(self, frame):
        """Add one :class:`~.inputs.Frame`."""
        sig, sci, md = frame.signal, frame.science, frame.master_dark
        f2, f5 = frame.stage2, frame.stage5
        sel = frame.valid & np.isfinite(sci)
        if f2 is not None:
            sel &= np.isfinite(f2)
        if md is not None:
            sel &= np.isfinite(md)
        resid = {"oracle": sci - frame.background - sig,
                 "pipeline": None if f2 is None else f2 - sig,
                 "master_dark": None if md is None else sci - md - sig,
                 "stage5": None if f5 is None else f5 - sig}
        clean = sel & (frame.cosmic == 0)
        populations = {"clean": clean, "cosmic": sel & (frame.cosmic > 0)}
        if frame.proxy_background is not None:
            self.match_error.append((frame.background - frame.proxy_background)[self.has_proxy])
            populations["clean_proxy_ok"] = clean & ~frame.proxy_hit
            self.proxy_cr[0] += int((clean & frame.proxy_hit).sum())
            self.proxy_cr[1] += int(clean.sum())
        for kind, pix in populations.items():
            pix_5 = pix if f5 is None else pix & np.isfinite(f5)
            for m, r in resid.items():
                if r is not None:
                    self.residuals[kind][m].append(r[pix_5 if m == "stage5" else pix])
        if f5 is not None:
            pix = frame.valid & frame.infilled & np.isfinite(f5)
            self.infilled.append((f5 - sig)[pix])

    def result(self, notes) -> dict:
        """``{"background": section}`` (notes receive what was not scored)."""
        background = {"n_frames": len(self.run.science)}
        for kind in POPULATIONS:
            cat = {m: np.concatenate(v) if v else None for m, v in self.residuals[kind].items()}
            if cat["oracle"] is None:          # no proxy table: no clean_proxy_ok population
                background[kind] = None
                continue
            oracle = residual_stats(cat["oracle"])
            background[kind] = {m: None if cat[m] is None else
                                residual_stats(cat[m], None if m == "oracle" else oracle)
                                for m in METHODS}
        background["proxy_match_error"] = (residual_stats(np.concatenate(self.match_error))
                                           if self.match_error else None)
        background["infilled"] = (residual_stats(np.concatenate(self.infilled))
                                  if self.infilled else None)
        background["proxy_cr_fraction"] = (as_float(self.proxy_cr[0] / self.proxy_cr[1])
                                           if self.proxy_cr[1] else None)
        if self.run.stage2_paths is None:
            notes.append(f"background: no stage {stage_number('final_no_infill')} frames, "
                         f"pipeline residual not scored (baselines on all in-trace pixels)")
        return {"background": background}


def _stats_text(st):
    """``RMS a, robust RMS b, median c`` of a residual_stats dict."""
    return (f"RMS {number(st['rms'], width=0)}, robust RMS {number(st['robust_rms'], width=0)}, "
            f"median {number(st['median'], width=0)}")


def _table(scores):
    """The ``background`` block of the score's table (none without the section)."""
    bg = scores.get("background")
    if not bg:
        return []
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
                cells.append(number(val, "{:.3f}", 12))
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


def _summary(scores):
    """The headline row: the residual RMS over the oracle's, of each method."""
    def ratio(method):
        return number(lookup(scores, "background", "clean", method, "rms_over_oracle"),
                      "{:.2f}", 0)

    return [("background residual RMS / oracle (no-CR trace pixels)",
             f"pipeline {ratio('pipeline')}, after stage 5 {ratio('stage5')}, "
             f"master dark {ratio('master_dark')}")]


#: The ``background`` section, frame by frame.
BACKGROUND = Metric(keys=("background",), scores=("matches", "final_no_infill", "final"),
                    per_frame=BackgroundMetrics, table=_table, summary=_summary)
