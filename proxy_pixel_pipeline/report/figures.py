"""The report's figures: those of :mod:`proxy_pixel_pipeline.plots`, embedded in the page.

A figure already in ``output_dir/figures/`` is used as it is when it is newer than
every product it reads (it was drawn from them: figures refuse stale products);
otherwise, or with ``redraw``, it is drawn anew (frame 0 for the per-frame ones, as
``make_figures.py`` does).  A figure whose products are not all current is not
shown, and the report says why.  Each is embedded as a ``data:`` URI, so the page
needs no other file.
"""

from __future__ import annotations

import base64
from pathlib import Path

from ..errors import PipelineError
from ..plots import figures
from ..runtime import registry
from ..runtime.logs import get_logger

__all__ = ["stage_figures", "data_uri"]

_MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".svg": "image/svg+xml"}


def data_uri(path) -> str:
    """The file at ``path`` as a ``data:`` URI."""
    path = Path(path)
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _caption(func) -> str:
    """The first sentence of the figure function's docstring."""
    doc = " ".join((func.__doc__ or "").split("\n\n")[0].split())
    return doc.replace("``", "").split(". ")[0].rstrip(".")


def _newest_input(layout, spec, science) -> float:
    """Modification time of the newest file the figure reads (every frame's, if per frame)."""
    times = []
    for name in spec.needs:
        where = getattr(layout, name)
        paths = [where(p) for p in science] if registry.outputs()[name].per_frame else [where]
        times += [Path(p).stat().st_mtime for p in paths if Path(p).is_file()]
    return max(times, default=float("inf"))


def stage_figures(cfg, layout, science, statuses, redraw=False) -> dict:
    """Every figure of :func:`~proxy_pixel_pipeline.plots.figures`, by the stage it shows.

    Parameters
    ----------
    cfg : Config
    layout : Layout
    science : list of Path
    statuses : dict of int to StageStatus
        Every stage's status (a figure is drawn only from current products).
    redraw : bool
        Draw every figure anew.

    Returns
    -------
    dict of int to list of dict
        For each stage (:attr:`~proxy_pixel_pipeline.plots.inputs.FigureSpec.stage`), its
        figures in order: ``file`` (name), ``caption``, ``src`` (data URI, or None when not
        shown) and ``note`` (why not shown, or that it was drawn now).
    """
    log = get_logger()
    out = {}
    for func in figures():
        spec = func.spec
        entry = {"file": spec.filename, "caption": _caption(func), "src": None, "note": ""}
        out.setdefault(spec.stage, []).append(entry)
        behind = sorted({registry.stage_of_output(n).number for n in spec.needs
                         if not statuses[registry.stage_of_output(n).number].current})
        if behind:
            entry["note"] = "not shown: stage " + ", ".join(
                f"{n} is {statuses[n].state}" for n in behind)
            continue
        target = layout.figures / spec.filename
        if redraw or not target.is_file() or target.stat().st_mtime < _newest_input(layout, spec,
                                                                                     science):
            kwargs = {"frame_index": 0} if spec.per_frame else {}
            try:
                target = func(cfg, out_dir=layout.figures, **kwargs)
            except PipelineError as exc:
                log.warning("figure %s not drawn: %s", spec.filename, exc)
                entry["note"] = f"not drawn: {exc}"
                continue
            log.info("drew %s", target)
            entry["note"] = "drawn for this report"
        entry["src"] = data_uri(target)
    return out
