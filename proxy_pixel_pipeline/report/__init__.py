"""The run on one page: ``output_dir/report.html`` (``ppp report CONFIG``).

What a person checks after a run, in one place that opens offline in any
browser (no script, every figure embedded): every stage's status (current,
stale and why, missing, interrupted), wall time and peak memory per rank and the
warnings it logged (from its run log, :mod:`~proxy_pixel_pipeline.runtime.runlog`),
its counts (pixels excluded by cause and matched, proxy values dropped, fits that
fell back, cosmic rays by detector, pixels infilled, columns flagged:
:mod:`.counts`), its provenance (version, RUNID, config digest, input sums,
parents) and its figures (:mod:`.figures`); then the settings that differ from the
defaults, the transit results (stage 7's depths and transmission spectrum) and,
on simulated data, the score against the truth.

:func:`collect` (:mod:`.collect`) gathers the values; the jinja2 template
``templates/report.html.j2`` (package data) lays them out; :func:`write_report`
writes the page atomically.  Like the figures, the report imports no MPI.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from ..io.atomic import write_text
from ..plots.inputs import as_config
from ..runtime.layout import Layout
from .collect import collect

__all__ = ["write_report", "render", "collect"]


def render(values) -> str:
    """The page (HTML text) of the values :func:`collect` gathered."""
    env = jinja2.Environment(loader=jinja2.PackageLoader(__name__, "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("report.html.j2").render(**values)


def write_report(config, output=None, redraw=False, score=True) -> Path:
    """Write the report of a run.

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration, or its YAML file.
    output : str or Path, optional
        The HTML file; default ``output_dir/report.html``.
    redraw : bool
        Draw every figure anew (default: only those absent or older than their
        products; they go to ``output_dir/figures/``).
    score : bool
        Include the score against the simulator's truth (``truth/`` beside the
        config file; skipped with a note when there is none).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    PipelineError
        Unreadable configuration or no science frames.
    """
    cfg = as_config(config)
    path = Path(output) if output is not None else Layout(cfg.output_dir).report
    return write_text(path, render(collect(cfg, redraw=redraw, score=score)))
