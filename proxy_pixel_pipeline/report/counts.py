"""What each stage counted, read back from its products for the report.

The counts are the integer cards the stages write into their products' primary
headers (:data:`CARDS`; a per-frame product's are summed over the frames, with
their range per frame), labelled with the cards' own comments, plus what the
tables hold: the profile fits' bins by :class:`~proxy_pixel_pipeline.flags.FitFlag`
(stages 3 and 4) and the spectra's columns by
:class:`~proxy_pixel_pipeline.flags.SpectrumFlag` (stage 6).  A product that is
missing contributes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from ..flags import FitFlag, SpectrumFlag
from ..io.products import Spectrum, read_profile_fits
from ..runtime import registry

__all__ = ["CARDS", "Headers", "stage_counts"]

#: Integer header cards counted, by output name (registry), in the order shown.
CARDS = {
    "matches": ("NSPEC", "NMATCHED", "NHOT", "NFEWSAMP", "NCONST", "NEXCL", "NNOPROXY",
                "NCAND", "NNEARMSK", "NDARKS"),
    "background": ("NPROXHIT",),
    "final_fits": ("NFALLBCK",),
    "final": ("NINFILL", "NCOSMIC", "NCRTIME", "NCRGROWN"),
    "spectra": ("NREJECT",),
    "light_curves": ("NFRAMES", "NCOLUSED", "NFILLED", "NORBITS"),
    "transit_depths": ("NVISITS",),
}


class Headers:
    """Primary headers of a run's products, each read once (per report)."""

    def __init__(self):
        self._cache = {}

    def get(self, path):
        """The primary header of ``path``, or None if it is missing or unreadable."""
        path = Path(path)
        if path not in self._cache:
            try:
                self._cache[path] = fits.getheader(path)
            except (OSError, ValueError):
                self._cache[path] = None
        return self._cache[path]


def _row(label, value, detail="", key=""):
    return {"label": label, "value": value, "detail": detail, "key": key}


def _files(layout, name, science):
    where = getattr(layout, name)
    return [where(p) for p in science] if registry.outputs()[name].per_frame else [where]


def _card_rows(headers, layout, name, science):
    """One row per card of :data:`CARDS` of output ``name`` (summed over its frames)."""
    found = [h for h in (headers.get(p) for p in _files(layout, name, science)) if h is not None]
    rows = []
    for key in CARDS.get(name, ()):
        values = [h[key] for h in found if key in h]
        if not values:
            continue
        label = found[0].comments[key] or key
        if len(found) > 1:
            rows.append(_row(label, int(np.sum(values)),
                             f"{min(values)}-{max(values)} per frame, {len(values)} frames", key))
        else:
            rows.append(_row(label, int(values[0]), "", key))
    return rows


def _fit_rows(paths):
    """Bins of profile fits by flag (stages 3 and 4), over every file in ``paths``."""
    flags = [read_profile_fits(p).flag for p in paths if Path(p).is_file()]
    if not flags:
        return []
    flags = np.concatenate(flags).astype(int)
    where = f" ({len(paths)} frames)" if len(paths) > 1 else ""
    rows = [_row(f"column bins fitted{where}", int(flags.size))]
    for flag in (FitFlag.SINGLE, FitFlag.FALLBACK, FitFlag.FAILED):
        rows.append(_row(f"bins flagged {flag.name}", int(np.count_nonzero(flags & flag)),
                         _doc_line(FitFlag, flag)))
    return rows


def _spectrum_rows(paths):
    """Stage 6's columns by data-quality flag, over every frame's spectrum."""
    dq = [Spectrum.read(p).dq for p in paths if Path(p).is_file()]
    if not dq:
        return []
    dq = np.array(dq, dtype=int)                           # (frames, columns)
    rows = [_row("columns extracted per frame", int(dq.shape[1]), f"{dq.shape[0]} frames")]
    for flag in SpectrumFlag:
        hit = (dq & flag) != 0
        rows.append(_row(f"columns flagged {flag.name}", int(hit.sum()),
                         f"column-frames; {int(hit.any(axis=0).sum())} columns in at least one "
                         f"frame", flag.name))
    return rows


def _doc_line(flags, flag) -> str:
    """The first sentence of ``flag``'s entry (``NAME (value)`` and the lines indented under
    it) in its class's docstring, '' if it has none."""
    lines = (flags.__doc__ or "").splitlines()
    head = f"{flag.name} ({int(flag)})"
    for i, line in enumerate(lines):
        if line.strip() == head:
            indent = len(line) - len(line.lstrip())
            text = []
            for more in lines[i + 1:]:
                if not more.strip() or len(more) - len(more.lstrip()) <= indent:
                    break
                text.append(more.strip())
            sentence = " ".join(text).replace("``", "").split(". ")[0]
            return sentence.rstrip(".")
    return ""


def stage_counts(headers, layout, number, science) -> list:
    """The counts of stage ``number``'s products, as rows for the report.

    Parameters
    ----------
    headers : Headers
    layout : Layout
    number : int
    science : list of Path

    Returns
    -------
    list of dict
        ``label``, ``value`` (int), ``detail`` (per-frame range or what a flag means)
        and ``key`` (the header card or flag, '' if none), in the stage's order.
    """
    rows = []
    for out in registry.stage(number).products:
        rows += _card_rows(headers, layout, out.name, science)
        if out.name in ("median_fits", "final_fits"):
            rows += _fit_rows(_files(layout, out.name, science))
        if out.name == "spectra":
            rows += _spectrum_rows(_files(layout, out.name, science))
    by_key = {r["key"]: r for r in rows}
    if "NCOSMIC" in by_key and "NCRTIME" in by_key:      # the two detectors of stage 5
        lacosmic = by_key["NCOSMIC"]["value"] - by_key["NCRTIME"]["value"]
        at = rows.index(by_key["NCRTIME"]) + 1
        rows.insert(at, _row("cosmic-ray pixels found by L.A.Cosmic only", lacosmic,
                             "NCOSMIC - NCRTIME", "LACOSMIC"))
    if "NSPEC" in by_key and "NMATCHED" in by_key and by_key["NSPEC"]["value"]:
        share = by_key["NMATCHED"]["value"] / by_key["NSPEC"]["value"]
        by_key["NMATCHED"]["detail"] = f"{100 * share:.1f} % of the spectral pixels"
    return rows
