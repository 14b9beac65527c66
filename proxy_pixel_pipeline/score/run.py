"""Score one run: read its inputs once, pass every frame to the per-frame metrics.

The ``run`` section records what was scored: paths, number of frames and
trace pixels, the simulator's preset and seed, the proxy settings, and which
stages' outputs were found (``stages_found``, by stage number: a stage is
found when every output of it that a metric scores exists, for every frame
if it has one file per frame).  The metrics' sections follow, in the order
of :func:`~.metric.metrics`, then ``notes``.
"""

from __future__ import annotations

from pathlib import Path

from ..runtime import registry
from ..runtime.config import load_config
from .inputs import RunInputs
from .metric import metrics

__all__ = ["score_run"]


def score_run(config_path, truth_dir=None, cr_nsigma=5.0) -> dict:
    """Compare a pipeline run with the simulator's truth.

    Parameters
    ----------
    config_path : str or Path
        The run's pipeline config (as written by ``simulate.py``).
    truth_dir : str or Path, optional
        Folder of the truth files; default ``<config folder>/truth``.
    cr_nsigma : float
        A truth cosmic-ray pixel must hold more than this many times the
        pixel's noise (default 5); an option of the metrics that declare it.

    Returns
    -------
    dict
        ``run`` (what was scored), the sections of every metric of
        :func:`~.metric.metrics` (``background``, ``spectrum``, ``transit``,
        ``profile``, ``cosmic``, ``spectra``...; each None, or None inside,
        where its stage outputs are missing) and ``notes`` (list of str,
        why something was not scored); see each metric's module for the
        definition of its numbers.  Floats are plain Python floats or None
        (never NaN).

    Raises
    ------
    PipelineError
        Invalid config, or no usable truth (the data are not simulated).
    """
    cfg = load_config(config_path)
    if truth_dir is None:
        truth_dir = Path(config_path).resolve().parent / "truth"
    run = RunInputs(cfg, Path(truth_dir))
    options = {"cr_nsigma": float(cr_nsigma)}
    found = metrics()

    def chosen(metric):
        return {name: options[name] for name in metric.options}

    accumulators = {i: m.per_frame(run, **chosen(m)) for i, m in enumerate(found) if m.per_frame}
    if accumulators:
        for frame in run.frames():
            for accumulator in accumulators.values():
                accumulator.add(frame)
    notes = run.notes
    sections = {"run": _run_section(run, config_path, found)}
    for i, metric in enumerate(found):
        part = (accumulators[i].result(notes) if i in accumulators
                else metric.section(run, notes, **chosen(metric)))
        if set(part) != set(metric.keys):
            raise ValueError(f"metric {metric.keys} returned the sections {sorted(part)}")
        sections.update((key, part[key]) for key in metric.keys)
    sections["notes"] = notes
    return sections


def _found(layout, science, name) -> bool:
    """Whether the output called ``name`` exists (for every science frame if per frame)."""
    where = getattr(layout, name)
    if registry.outputs()[name].per_frame:
        return all(where(p).is_file() for p in science)
    return where.is_file()


def _run_section(run, config_path, found) -> dict:
    """What was scored (the ``run`` section)."""
    cfg, layout, science, header = run.cfg, run.layout, run.science, run.truth.header
    ny, nx = run.mask.shape
    scored = {}
    for name in sorted({n for m in found for n in m.scores},
                       key=lambda n: registry.stage_of_output(n).number):
        scored.setdefault(registry.stage_of_output(name).number, []).append(name)
    return {"config": str(Path(config_path).resolve()), "output_dir": str(layout.root),
            "truth_dir": str(run.truth.folder), "n_science": len(science), "shape": [ny, nx],
            "n_trace_pixels": int(run.mask.sum()), "bin_width": int(cfg.bin_width),
            "preset": header.get("SIMPRES"), "seed": header.get("SIMSEED"),
            "proxy_method": cfg.proxy_method, "proxy_count": int(cfg.proxy_count),
            "proxy_combine": cfg.proxy_combine, "proxy_offset": bool(cfg.proxy_offset),
            "stages_found": {str(number): all(_found(layout, science, n) for n in names)
                             for number, names in scored.items()}}
