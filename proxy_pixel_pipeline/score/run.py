"""Score one run: read its inputs once, pass every frame to the per-frame metrics.

The ``run`` section records what was scored: paths, number of frames and
trace pixels, the simulator's preset and seed, the proxy settings, and which
stages' outputs were found (``stages_found``, by stage number: stage 1's match
table, every frame of stages 2, 4 and 5, stage 3's fits, stage 6's spectra of
every frame and its light curves).
"""

from __future__ import annotations

from pathlib import Path

from ..runtime.config import load_config
from .background import BackgroundMetrics
from .cosmic import CosmicMetrics
from .inputs import RunInputs, stage_number
from .profiles import profile_section
from .extraction import spectra_section
from .binned_spectrum import SpectrumMetrics

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
        pixel's noise (default 5).

    Returns
    -------
    dict
        Sections ``run``, ``background``, ``spectrum``, ``transit``,
        ``profile``, ``cosmic``, ``spectra`` (stage 6, :mod:`.spectra`; each
        None when its stage outputs are missing) and ``notes`` (list of
        str); see :mod:`proxy_pixel_pipeline.score` for every metric's
        definition.  Floats are plain Python floats or
        None (never NaN).

    Raises
    ------
    PipelineError
        Invalid config, or no usable truth (the data are not simulated).
    """
    cfg = load_config(config_path)
    if truth_dir is None:
        truth_dir = Path(config_path).resolve().parent / "truth"
    run = RunInputs(cfg, Path(truth_dir))
    per_frame = [BackgroundMetrics(run), SpectrumMetrics(run), CosmicMetrics(run, cr_nsigma)]
    for frame in run.frames():
        for metric in per_frame:
            metric.add(frame)
    background, spectrum, cosmic = per_frame
    notes = run.notes
    sections = {"run": _run_section(run, config_path)}
    sections.update(background.result(notes))
    sections.update(spectrum.result(notes))
    sections.update(profile_section(run, notes))
    sections.update(cosmic.result(notes))
    sections.update(spectra_section(run, notes))
    sections["notes"] = notes
    return sections


def _run_section(run, config_path) -> dict:
    """What was scored (the ``run`` section)."""
    cfg, layout, science, header = run.cfg, run.layout, run.science, run.truth.header
    ny, nx = run.mask.shape
    return {"config": str(Path(config_path).resolve()), "output_dir": str(layout.root),
            "truth_dir": str(run.truth.folder), "n_science": len(science), "shape": [ny, nx],
            "n_trace_pixels": int(run.mask.sum()), "bin_width": int(cfg.bin_width),
            "preset": header.get("SIMPRES"), "seed": header.get("SIMSEED"),
            "proxy_method": cfg.proxy_method, "proxy_count": int(cfg.proxy_count),
            "proxy_combine": cfg.proxy_combine, "proxy_offset": bool(cfg.proxy_offset),
            "stages_found": {str(stage_number(output)): found for output, found in (
                ("matches", layout.matches.is_file()),
                ("final_no_infill", run.stage2_paths is not None),
                ("median_fits", layout.median_fits.is_file()),
                ("final_fits", all(layout.final_fits(p).is_file() for p in science)),
                ("final", run.stage5_paths is not None),
                ("spectra", all(layout.spectra(p).is_file() for p in science)
                 and layout.light_curves.is_file()))}}
