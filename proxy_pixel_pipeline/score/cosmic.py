"""Cosmic-ray metrics: stage-5 cosmic-ray detection against the truth (section ``cosmic``).

Per-pixel noise ``sigma = sqrt((BG - bias)/gain + SIG/gain +
(read_noise/gain)**2)`` ADU (shot noise of dark and signal, read noise; truth
header GAIN, RDNOISE, BIAS; negative terms count as 0), i.e. stage 5's
:func:`~proxy_pixel_pipeline.science.noise.error_model` of the true signal with the
pixel's true dark and read noise as the background noise.  Truth CR pixels:
in-trace, not missing, ``CR > cr_nsigma * sigma`` (default 5: fainter
deposits are lost in the noise).  Non-CR pixels: in-trace, not missing,
``CR == 0``.  Faint deposits (``0 < CR <= threshold``) count in neither.

``recall`` = flagged truth-CR pixels / truth-CR pixels;
``false_positive_rate`` = flagged non-CR pixels / non-CR pixels;
``precision`` = flagged truth-CR / (flagged truth-CR + flagged non-CR).
Flags: the ``COSMIC`` extension of ``final/``; ``by_detector`` gives recall
and false-positive rate of each detector alone from the ``DQ`` bits
(``temporal``: along the time series, ``lacosmic``: L.A.Cosmic).
``left_above`` is the fraction of truth-CR pixels whose stage-5 value still
lies more than ``cr_nsigma`` noise above the true signal.  Also the counts behind them
(``n_truth``, ``n_found``, ``n_non_cr``, ``n_false``), the faint deposits
(``n_faint``, ``n_faint_flagged``) and every flagged pixel (``n_flagged``).
"""

from __future__ import annotations

import numpy as np

from ..flags import DQFlag
from ..science.noise import error_model
from .inputs import stage_number
from .metric import Metric, lookup, number
from .stats import as_float

__all__ = ["CosmicMetrics", "pixel_noise", "DETECTORS", "COSMIC"]

#: The cosmic-ray detectors of stage 5, by their DQ bit.
DETECTORS = {"temporal": DQFlag.COSMIC_TEMPORAL, "lacosmic": DQFlag.COSMIC_LACOSMIC}


def pixel_noise(signal, background, gain, read_noise, bias):
    """True one-sigma noise of each pixel, ADU.

    Parameters
    ----------
    signal, background : ndarray
        True expected signal and background (bias + dark current), ADU.
    gain : float
        e-/ADU.
    read_noise : float
        e-.
    bias : float
        ADU.

    Returns
    -------
    ndarray
    """
    dark_and_read = np.sqrt(np.clip(background - bias, 0, None) / gain + (read_noise / gain) ** 2)
    return error_model(signal, dark_and_read, gain)


class CosmicMetrics:
    """Counts truth cosmic-ray pixels and stage 5's flags frame by frame.

    Parameters
    ----------
    run : RunInputs
    cr_nsigma : float
        A truth cosmic-ray pixel holds more than this many times its noise.
    """

    def __init__(self, run, cr_nsigma=5.0):
        self.run = run
        self.cr_nsigma = float(cr_nsigma)
        self.counts = dict.fromkeys(("truth", "found", "nonc", "false", "faint", "faint_flagged",
                                     "flagged", "left"), 0)
        self.detectors = {name: {"found": 0, "false": 0} for name in DETECTORS}

    def add(self, frame):
        """Add one :class:`~.inputs.Frame` (nothing without stage 5)."""
        if frame.stage5 is None:
            return
        truth, valid, flagged, cr = self.run.truth, frame.valid, frame.flagged, frame.cosmic
        noise = pixel_noise(frame.signal, frame.background, truth.gain, truth.read_noise,
                            truth.bias)
        strong = valid & (cr > self.cr_nsigma * noise)
        faint = valid & (cr > 0) & ~strong
        none = valid & (cr == 0)
        c = self.counts
        c["truth"] += int(strong.sum())
        c["found"] += int((strong & flagged).sum())
        c["nonc"] += int(none.sum())
        c["false"] += int((none & flagged).sum())
        c["faint"] += int(faint.sum())
        c["faint_flagged"] += int((faint & flagged).sum())
        c["flagged"] += int((valid & flagged).sum())
        c["left"] += int((strong & (frame.stage5 - frame.signal > self.cr_nsigma * noise)).sum())
        for name, bit in DETECTORS.items():
            by = (frame.dq & bit) != 0
            self.detectors[name]["found"] += int((strong & by).sum())
            self.detectors[name]["false"] += int((none & by).sum())

    def result(self, notes) -> dict:
        """``{"cosmic": section}``, the section None without stage 5 (notes say so)."""
        if self.run.stage5_paths is None:
            notes.append(f"cosmic: no stage {stage_number('final')} frames, "
                         f"cosmic-ray recall not scored")
            return {"cosmic": None}
        c = self.counts
        tp_fp = c["found"] + c["false"]
        return {"cosmic": {
            "nsigma": self.cr_nsigma, "n_truth": c["truth"], "n_found": c["found"],
            "recall": as_float(c["found"] / c["truth"]) if c["truth"] else None,
            "n_non_cr": c["nonc"], "n_false": c["false"],
            "false_positive_rate": as_float(c["false"] / c["nonc"]) if c["nonc"] else None,
            "precision": as_float(c["found"] / tp_fp) if tp_fp else None,
            "n_faint": c["faint"], "n_faint_flagged": c["faint_flagged"],
            "n_flagged": c["flagged"],
            "left_above": as_float(c["left"] / c["truth"]) if c["truth"] else None,
            "by_detector": {name: {
                "recall": as_float(d["found"] / c["truth"]) if c["truth"] else None,
                "false_positive_rate": as_float(d["false"] / c["nonc"]) if c["nonc"] else None}
                for name, d in self.detectors.items()}}}


def _table(scores):
    """The cosmic-ray block of the score's table (none without stage 5)."""
    cr = scores.get("cosmic")
    if not cr:
        return []
    rec = number(cr["recall"], "{:.3f}", 0)
    fpr = number(cr["false_positive_rate"], "{:.2e}", 0)
    prec = number(cr["precision"], "{:.3f}", 0)
    return [f"Cosmic rays (stage 5 COSMIC mask vs truth deposits > {cr['nsigma']:g} sigma)",
            f"  recall {rec} ({cr['n_found']}/{cr['n_truth']}), false-positive rate {fpr} "
            f"({cr['n_false']}/{cr['n_non_cr']}), precision {prec}; faint deposits "
            f"flagged {cr['n_faint_flagged']}/{cr['n_faint']}",
            *(f"  {name:<9} alone: recall {number(d['recall'], '{:.3f}', 0)}, false-positive rate "
              f"{number(d['false_positive_rate'], '{:.2e}', 0)}"
              for name, d in cr.get("by_detector", {}).items()),
            f"  hit pixels left above {cr['nsigma']:g} sigma after stage 5: "
            f"{number(cr.get('left_above'), '{:.4f}', 0)}", ""]


def _summary(scores):
    """Headline row: recall and false-positive rate."""
    return [("cosmic rays (stage 5)",
             f"recall {number(lookup(scores, 'cosmic', 'recall'), '{:.2f}', 0)}, "
             f"false-positive rate "
             f"{number(lookup(scores, 'cosmic', 'false_positive_rate'), '{:.1e}', 0)}")]


#: The ``cosmic`` section, frame by frame.
COSMIC = Metric(keys=("cosmic",), scores=("final",), per_frame=CosmicMetrics,
                options=("cr_nsigma",), table=_table, summary=_summary)
