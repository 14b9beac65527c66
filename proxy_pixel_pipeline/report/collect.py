"""Everything the report shows, gathered from a run's folder into plain values.

Nothing here draws or formats HTML: :func:`collect` returns dicts and lists the
template (``templates/report.html.j2``) lays out.  Sources: the stages' status
(:func:`~proxy_pixel_pipeline.runtime.lineage.stage_status`), their run logs
(:mod:`~proxy_pixel_pipeline.runtime.runlog`), the products' provenance cards
(:mod:`~proxy_pixel_pipeline.io.provenance`) and counts (:mod:`.counts`), the
settings against their declared defaults (:mod:`~proxy_pixel_pipeline.runtime.settings`),
the figures (:mod:`.figures`), stage 7's depths and, on simulated data, the score
(:mod:`proxy_pixel_pipeline.score`).
"""

from __future__ import annotations

import math
import socket
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..errors import PipelineError
from ..io.transit_products import read_depths
from ..plots.transit_fit import TRANSMISSION_SPECTRUM
from ..runtime import registry
from ..runtime.layout import Layout
from ..runtime.lineage import stage_status
from ..runtime.runlog import read_runlog
from ..runtime.settings import SETTINGS
from ..score import format_table, score_run
from ..score.metric import metrics
from .counts import Headers, stage_counts
from .figures import stage_figures

__all__ = ["collect"]

#: Cards of a product's provenance the report lists, in order.
_PROVENANCE = ("RUNID", "CFGHASH", "CFGFILE", "PIPEVER", "DATE", "INPUTSUM")


def collect(cfg, redraw=False, score=True) -> dict:
    """What the report of the run of ``cfg`` shows.

    Parameters
    ----------
    cfg : Config
    redraw : bool
        Draw every figure anew (default: only those older than their products).
    score : bool
        Score the run against the simulator's truth when there is one.

    Returns
    -------
    dict
        ``title``, ``generated``, ``version``, ``config``, ``output_dir``, ``inputs``
        (raw files), ``stages`` (one dict per stage: ``number``, ``title``,
        ``script``, ``status``, ``detail``, ``runlog``, ``provenance``, ``counts``,
        ``warnings``, ``figures``), ``settings`` (those that differ from the
        defaults, and the required ones), ``transit`` and ``score``.
    """
    layout = Layout(cfg.output_dir)
    science = cfg.science_paths()
    headers = Headers()
    statuses = {s.number: stage_status(cfg, layout, s.number, science) for s in registry.STAGES}
    drawn = stage_figures(cfg, layout, science, statuses, redraw)
    stages = []
    for spec in registry.STAGES:
        status = statuses[spec.number]
        provenance = _provenance(headers, layout, spec, science)
        runlog = _runlog(cfg, spec.number, provenance)
        stages.append({
            "number": spec.number, "title": spec.title, "script": spec.script,
            "status": status.state, "detail": status.detail,
            "writes": [o.path + ("/" if o.per_frame else "") for o in spec.products],
            "runlog": runlog, "provenance": provenance,
            "counts": stage_counts(headers, layout, spec.number, science),
            "warnings": [dict(w, rank=r["rank"]) for r in (runlog or {}).get("ranks", [])
                         for w in r["warnings"]],
            "figures": [f for f in drawn.get(spec.number, [])
                        if f["file"] != TRANSMISSION_SPECTRUM.filename]})
    transit_figure = next((f for f in drawn.get(7, [])
                           if f["file"] == TRANSMISSION_SPECTRUM.filename), None)
    source = Path(cfg.source).resolve()
    return {"title": f"{source.parent.name} ({source.name})",
            "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "host": socket.gethostname(), "version": __version__,
            "config": str(Path(cfg.source).resolve()), "output_dir": str(layout.root.resolve()),
            "inputs": _inputs(cfg, science), "stages": stages,
            "all_current": all(s.current for s in statuses.values()),
            "settings": _settings(cfg),
            "transit": _transit(cfg, layout, statuses[7], transit_figure),
            "score": _score(cfg, statuses) if score else {"note": "left out (--no-score)"}}


def _provenance(headers, layout, spec, science) -> dict:
    """The provenance cards of the stage's products (their first file), and the RUNIDs
    of all its files (one, unless they come from different runs)."""
    files = [getattr(layout, o.name)(p) if o.per_frame else getattr(layout, o.name)
             for o in spec.products for p in (science if o.per_frame else [None])]
    found = [(f, h) for f, h in ((f, headers.get(f)) for f in files) if h is not None]
    if not found:
        return {}
    first = found[0][1]
    cards = [(key, first[key], first.comments[key]) for key in _PROVENANCE if key in first]
    parents = [first[k] for k in first if k.startswith("PARENT")]
    runids = sorted({h.get("RUNID") for _, h in found if h.get("RUNID")})
    return {"cards": cards, "parents": parents, "runids": runids, "runid": first.get("RUNID"),
            "file": Path(found[0][0]).relative_to(layout.root).as_posix(), "n_files": len(found)}


def _runlog(cfg, number, provenance):
    """The stage's run log with its per-rank numbers summed up; ``matches`` says whether
    it is the log of the run that made the products in place."""
    log = read_runlog(cfg.output_dir, number)
    if log is None:
        return None
    peaks = [r["peak_gib"] for r in log["ranks"] if r.get("peak_gib") is not None]
    return {**log, "peak_gib": max(peaks) if peaks else None,
            "cpu_s": sum(r["cpu_s"] for r in log["ranks"]),
            "matches": log.get("runid") is not None and log.get("runid") == provenance.get("runid")}


def _inputs(cfg, science) -> list:
    """The raw inputs, one row each kind."""
    def where(paths):
        folders = sorted({str(Path(p).parent) for p in paths})
        return folders[0] if len(folders) == 1 else f"{len(folders)} folders"

    darks = cfg.dark_paths()
    rows = [("dark frames", len(darks), where(darks)), ("science frames", len(science), where(science)),
            ("spectral mask", "", str(cfg.spectral_mask))]
    rows += [(key.replace("_", " "), "", str(getattr(cfg, key)))
             for key in ("candidate_pixels", "exclude_pixels") if getattr(cfg, key) is not None]
    if cfg.joint_visits:
        rows.append(("joint visits", len(cfg.joint_visits), ", ".join(map(str, cfg.joint_visits))))
    return rows


def _shown(value) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _settings(cfg) -> list:
    """The settings given that differ from their defaults, and the required ones, in the
    order of :data:`~proxy_pixel_pipeline.runtime.settings.SETTINGS`."""
    rows = []
    for s in SETTINGS:
        value = getattr(cfg, s.name)
        if not s.required and _same(value, s.default):
            continue
        rows.append({"name": s.name, "value": _shown(cfg.as_written.get(s.name, value)),
                     "default": "required" if s.required else _shown(s.default),
                     "stages": ", ".join(map(str, s.stages)) or "speed only",
                     "doc": " ".join(s.doc.split())})
    return rows


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return a == b


def _number(value, digits=4) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "-" if not math.isfinite(value) else f"{value:.{digits}g}"


def _transit(cfg, layout, status, figure) -> dict:
    """Stage 7's depths, one row per channel (white first), and the transmission spectrum."""
    if not layout.transit_depths.is_file():
        return {"rows": [], "figure": figure, "note": f"no transit depths ({status.state})"}
    depths = read_depths(layout.transit_depths)
    rows = []
    for r in depths:
        rows.append({"channel": str(r["CHANNEL"]).strip(),
                     "wavelength": f"{_number(r['WAVELENGTH_LO'], 5)}-{_number(r['WAVELENGTH_HI'], 5)}",
                     "columns": f"{r['COLUMN_LO']}-{r['COLUMN_HI']}",
                     "rp_rs": _number(r["RP_RS"]), "rp_lo": _number(r["RP_RS_ERR_LO"], 2),
                     "rp_hi": _number(r["RP_RS_ERR_HI"], 2), "depth": _number(r["DEPTH"]),
                     "depth_err": _number(r["DEPTH_ERR"], 2), "chi2": _number(r["CHI2"], 5),
                     "bic": _number(r["BIC"], 5), "visits": int(r["N_VISITS"]),
                     "converged": bool(r["CONVERGED"])})
    note = "" if status.current else f"stage 7 is {status.state}: {status.detail}"
    return {"rows": rows, "figure": figure, "note": note, "model": cfg.transit_model,
            "sampler": cfg.fit_sampler}


def _score(cfg, statuses) -> dict:
    """The score against the simulator's truth (``truth/`` beside the config), if any."""
    truth = Path(cfg.source).resolve().parent / "truth"
    if not truth.is_dir():
        return {"note": "not simulated data (no truth/ beside the config): nothing to score "
                        "against"}
    try:
        scores = score_run(cfg.source, truth_dir=truth)
    except PipelineError as exc:
        return {"note": f"not scored: {exc}"}
    rows = [(label, value) for metric in metrics() for label, value in metric.summary(scores)]
    behind = [n for n, s in statuses.items() if not s.current]
    note = (f"stages {', '.join(map(str, behind))} are not current: their numbers describe the "
            f"products in place" if behind else "")
    return {"summary": rows, "table": format_table(scores), "notes": scores.get("notes", []),
            "note": note}
