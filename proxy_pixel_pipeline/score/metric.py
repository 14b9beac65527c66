"""What a score metric declares, and how the score finds the metrics.

A metric is one module of :mod:`proxy_pixel_pipeline.score` holding a
:class:`Metric`: the score's keys it fills, the run's outputs it scores, how
it computes them from the run's inputs (:class:`~.inputs.RunInputs`) and how
they are printed.  :func:`metrics` finds every one
(:func:`~proxy_pixel_pipeline.runtime.discovery.declared`), so that
:func:`~.run.score_run`, :func:`~.report.format_table` and
:func:`~.report.format_summary` need no list of them: adding a metric is
adding its module, and nothing else.  For example::

    def depth_section(run, notes):
        ...
        return {"depth": {"error": error}}

    def _lines(scores):
        depth = scores.get("depth")
        return [] if depth is None else [f"Depth error {number(depth['error'], width=0)}", ""]

    DEPTH = Metric(keys=("depth",), scores=("transit_depths",), section=depth_section,
                   table=_lines)

The helpers :func:`number` and :func:`lookup` format the values of a score
dict (``-`` for a value that could not be computed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..runtime import registry
from ..runtime.discovery import declared

__all__ = ["Metric", "metrics", "number", "lookup", "FIXED_KEYS"]

#: Keys of the score that no metric fills: what was scored, first, and the notes, last.
FIXED_KEYS = ("run", "notes")

#: Modules of :mod:`proxy_pixel_pipeline.score` that declare no metric.
_HELPERS = ("inputs", "metric", "report", "run", "stats", "truth")


def _no_rows(scores) -> list:
    return []


@dataclass(frozen=True)
class Metric:
    """One part of the score, declared by the module that computes it.

    Exactly one of ``per_frame`` and ``section`` is given.

    Attributes
    ----------
    keys : tuple of str
        The score's keys it fills, in order (e.g. ``("spectrum", "transit")``).
    scores : tuple of str
        Registry names (:mod:`proxy_pixel_pipeline.runtime.registry`) of the
        outputs it compares with the truth.  A missing one leaves the numbers
        that need it ``None`` with a note, never an error.  They order the
        metrics (earliest stage first, then module name) and make the ``run``
        section's ``stages_found``.
    table : callable
        ``table(scores) -> list of str``: the metric's block of
        :func:`~.report.format_table` (end it with an empty line; no lines
        when it was not scored), from the whole score dict.
    summary : callable
        ``summary(scores) -> list of (label, value)``: its rows of
        :func:`~.report.format_summary` (default: none).
    per_frame : callable or None
        ``per_frame(run, **options)`` returns an accumulator with
        ``add(frame)``, called with every :class:`~.inputs.Frame` in order
        (each frame is read once for all metrics), and ``result(notes) ->
        dict`` of :attr:`keys`.
    section : callable or None
        ``section(run, notes, **options) -> dict`` of :attr:`keys`, computed
        after the frames (for what does not go frame by frame).
    options : tuple of str
        The options of :func:`~.run.score_run` it takes, by keyword
        (e.g. ``("cr_nsigma",)``).
    """

    keys: tuple
    scores: tuple
    table: Callable
    summary: Callable = _no_rows
    per_frame: Callable | None = None
    section: Callable | None = None
    options: tuple = ()

    def __post_init__(self):
        if (self.per_frame is None) == (self.section is None):
            raise ValueError(f"metric {self.keys}: give one of per_frame and section")
        unknown = [n for n in self.scores if n not in registry.outputs()]
        if unknown:
            raise ValueError(f"metric {self.keys}: no stage writes {unknown} (see registry.STAGES)")
        fixed = set(self.keys) & set(FIXED_KEYS)
        if fixed:
            raise ValueError(f"metric {self.keys}: {sorted(fixed)} belong to the score itself")

    @property
    def stage(self) -> int:
        """Number of the earliest stage whose products it scores (0: none)."""
        return min((registry.stage_of_output(n).number for n in self.scores), default=0)


def metrics() -> tuple:
    """Every :class:`Metric` of the score's modules, in the order of the score.

    Returns
    -------
    tuple of Metric
        Ordered by :attr:`Metric.stage`, then by module name and definition
        order.

    Raises
    ------
    ValueError
        Two metrics fill the same key.
    """
    found = [m for _, m in declared(__package__, lambda module, value: isinstance(value, Metric),
                                    skip=_HELPERS)]
    keys = [k for m in found for k in m.keys]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"two score metrics fill {twice}")
    return tuple(sorted(found, key=lambda m: m.stage))


def number(x, fmt="{:.3f}", width=10) -> str:
    """``x`` formatted and right-aligned in ``width`` characters, ``-`` for None."""
    text = "-" if x is None else fmt.format(x)
    return text.rjust(width)


def lookup(scores, *keys):
    """``scores[k1][k2]...``, or None where a level is missing or None."""
    node = scores
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node
