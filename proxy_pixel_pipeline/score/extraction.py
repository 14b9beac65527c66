"""Stage 6's products against the truth: spectra and the white light curve.

Definitions (``spectra`` section; notation of :mod:`proxy_pixel_pipeline.score`):

* ``pull_width``: robust standard deviation (1.4826 MAD) over every frame and
  column not flagged LOW_WEIGHT or NO_DATA of ``(FLUX - F_true) / FLUX_ERR``,
  with ``F_true`` the true column flux (truth ``SPECTRUM`` ``FLUX_E / GAIN``
  times the frame's ``FLUX_SCALE``); ``pull_median`` its median;
  ``bias``: median over those of ``FLUX / F_true - 1``; the same for the box
  sum (``box_pull_width``, ``box_bias``).
* The *oracle* (:func:`~.inputs.oracle_columns`): optimal extraction
  (:func:`~..science.extraction.optimal_extract`, same ``extract_sigma``) of ``S - BG`` with the true profile (``SIG``
  normalised per column), every missing or cosmic-ray pixel (``CR > 0``)
  masked and the true noise ``sqrt((BG - bias)/gain + (read_noise/gain)**2 +
  1/12)`` ADU; its light curves are made like stage 6's (columns with less
  than ``extract_min_weight`` of the profile usable filled by
  :func:`~..lightcurves.fill_columns`); with ``profile_spill`` (stage 6
  counts the light a moved or smeared trace carries past the mask) each
  column divided by its share of the true signal inside the mask
  (:func:`~.inputs.mask_fraction`).
* ``white_scatter``: standard deviation (ddof 1) of the normalised white
  light curve over the out-of-transit frames (truth ``TRANSIT``), for
  stage 6's optimal (``WHITE``) and box (``WHITE_BOX``) light curves and the
  oracle; ``*_over_oracle`` the ratios.
"""

from __future__ import annotations

import numpy as np

from ..science import lightcurves as lc
from ..runtime import registry
from ..io.products import Spectrum, read_light_curves
from ..flags import SpectrumFlag
from .inputs import mask_fraction
from .metric import Metric, lookup, number
from .stats import as_float, robust_std

__all__ = ["spectra_section", "SPECTRA"]


def spectra_section(run, notes) -> dict:
    """The ``spectra`` section (None without stage 6's products)."""
    cfg, layout, truth = run.cfg, run.layout, run.truth
    paths = run.science
    if not all(layout.spectra(p).is_file() for p in paths) or not layout.light_curves.is_file():
        notes.append(f"spectra: no stage 6 products (run {registry.stage(6).script})")
        return {"spectra": None}
    names = [p.name for p in paths]
    transit, scale = truth.frames_of(names)
    true_flux = np.asarray(truth.tables["SPECTRUM"]["FLUX_E"], float) / truth.gain
    pulls, bias, box_pulls, box_bias = [], [], [], []
    for p, s in zip(paths, scale):
        t = Spectrum.read(layout.spectra(p))
        good = (t.dq & int(SpectrumFlag.LOW_WEIGHT | SpectrumFlag.NO_DATA)) == 0
        good &= true_flux > 0
        f_true = s * true_flux[good]
        pulls.append((t.flux[good] - f_true) / t.flux_err[good])
        bias.append(t.flux[good] / f_true - 1)
        box_pulls.append((t.box[good] - f_true) / t.box_err[good])
        box_bias.append(t.box[good] / f_true - 1)
    pulls, bias = np.concatenate(pulls), np.concatenate(bias)
    box_pulls, box_bias = np.concatenate(box_pulls), np.concatenate(box_bias)

    lcs, _ = read_light_curves(layout.light_curves)
    order = [names.index(str(n).strip()) for n in lcs["FILE"]]
    oot = ~transit[order]
    oracle = run.oracle_columns[order]
    if cfg.extract_profile == "follow" and cfg.profile_spill:
        # Stage 6 counts the light the trace carries past the mask: so does the oracle.
        oracle = oracle / mask_fraction(truth, run.mask, [names[i] for i in order])
    ok = lc.usable_columns(oracle)
    edges = lc.channel_edges(oracle.shape[1], cfg.channel_width)
    o_white, _, o_chan, _ = lc.bin_channels(oracle, np.zeros_like(oracle), edges, ok)
    o_white = o_white / np.median(o_white[oot])
    scatter = {key: float(np.std(np.asarray(lcs[key], float)[oot], ddof=1))
               for key in ("WHITE", "WHITE_BOX")}
    o_scatter = float(np.std(o_white[oot], ddof=1))
    out = {"n_values": int(len(pulls)),
           "pull_width": as_float(robust_std(pulls)), "pull_median": as_float(np.median(pulls)),
           "bias": as_float(np.median(bias)),
           "box_pull_width": as_float(robust_std(box_pulls)), "box_bias": as_float(np.median(box_bias)),
           "white_scatter": scatter["WHITE"], "white_box_scatter": scatter["WHITE_BOX"],
           "oracle_white_scatter": o_scatter,
           "white_scatter_over_oracle": scatter["WHITE"] / o_scatter,
           "white_box_scatter_over_oracle": scatter["WHITE_BOX"] / o_scatter,
           "injected": truth.depth}
    return {"spectra": out}


def _table(scores):
    """The ``spectra`` block of the score's table (stage 6 against the truth and the oracle)."""
    sp = scores.get("spectra")
    if not sp:
        return []

    def ratio(key):
        return number(sp.get(key), "{:.2f}", 0)

    lines = [f"Stage 6 spectra ({sp['n_values']} frame-columns; pull = (flux - true) / error) and "
             f"light curves (oracle: true background, profile and cosmic rays)",
             f"  pull width: optimal {number(sp['pull_width'], '{:.3f}', 0)} (median pull "
             f"{number(sp['pull_median'], '{:+.3f}', 0)}, "
             f"bias {number(sp['bias'], '{:+.3%}', 0)}), "
             f"box {number(sp['box_pull_width'], '{:.3f}', 0)} "
             f"(bias {number(sp['box_bias'], '{:+.3%}', 0)})",
             f"  white light, out-of-transit scatter: optimal "
             f"{number(sp['white_scatter'], '{:.2e}', 0)} ({ratio('white_scatter_over_oracle')}x "
             f"oracle), box {number(sp['white_box_scatter'], '{:.2e}', 0)} "
             f"({ratio('white_box_scatter_over_oracle')}x), oracle "
             f"{number(sp['oracle_white_scatter'], '{:.2e}', 0)}"]
    return lines + [""]


def _summary(scores):
    """Headline row: the white light curve's scatter against the oracle's."""
    def value(key, fmt):
        return number(lookup(scores, "spectra", key), fmt, 0)

    return [("white-light scatter (stage 6) / oracle's",
             f"{value('white_scatter_over_oracle', '{:.2f}')} (optimal extraction), "
             f"{value('white_box_scatter_over_oracle', '{:.2f}')} (box); flux bias "
             f"{value('bias', '{:+.2%}')}")]


#: The ``spectra`` section, from stage 6's products at the end.
SPECTRA = Metric(keys=("spectra",), scores=("spectra", "light_curves"), section=spectra_section,
                 table=_table, summary=_summary)
