"""The score as text and as JSON.

:func:`format_table` renders every metric for a terminal: what was scored
(the ``run`` section), then one block per metric, each drawn by the metric's
own module (:attr:`~.metric.Metric.table`, in the order of
:func:`~.metric.metrics`), then the notes; :func:`format_summary` gives the
few headline numbers (:attr:`~.metric.Metric.summary`); :func:`write_score`
stores the score dict as strict JSON (NaN as ``null``).  The metrics
themselves are defined in their modules.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io.atomic import write_text
from .metric import metrics
from .stats import as_float

__all__ = ["format_summary", "format_table", "write_score"]


def format_summary(scores) -> str:
    """The few numbers that say how a run did, as a short table.

    Parameters
    ----------
    scores : dict
        From :func:`~.run.score_run`.

    Returns
    -------
    str
        One line per headline number of each metric (``-`` where it could
        not be computed).
    """
    rows = [row for metric in metrics() for row in metric.summary(scores)]
    width = max((len(label) for label, _ in rows), default=0)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows) + "\n"


def format_table(scores) -> str:
    """Render a score dict (from :func:`~.run.score_run`) as a plain-text table.

    Parameters
    ----------
    scores : dict

    Returns
    -------
    str
        What was scored, one block per metric (one line each per method;
        ``-`` marks a metric that could not be computed), and the notes.
    """
    lines = _run_lines(scores.get("run", {}))
    for metric in metrics():
        lines += metric.table(scores)
    lines += [f"note: {note}" for note in scores.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def _run_lines(run):
    return [f"Score of {run.get('output_dir')} against {run.get('truth_dir')}",
            f"  {run.get('n_science')} science frames, {run.get('n_trace_pixels')} trace pixels, "
            f"preset {run.get('preset')}, seed {run.get('seed')}",
            f"  background from K = {run.get('proxy_count')} proxies per pixel "
            f"({run.get('proxy_method')} rule, combined by {run.get('proxy_combine')}"
            f"{', with offsets' if run.get('proxy_offset') else ''})", ""]


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
