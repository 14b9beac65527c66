"""The pipeline's stages, declared once.

Each :class:`Stage` says what the stage is (number, script, title), what runs
it, which earlier products (by output name) and raw inputs it reads, and what
it writes under ``output_dir``.  Everything else is derived from this table: the stage names in
the FITS headers, the per-stage configuration digests (a stage's own settings,
see :mod:`.settings`, plus the digests of the stages it reads), the lineage
checks and provenance of :class:`~proxy_pixel_pipeline.stages.base.StageRunner`, the "rerun
N_Script.py" hints, the output folders (:class:`~.layout.Layout`), the figures'
requirements, the Makefile's and the Slurm example's stage lists
(``python -m proxy_pixel_pipeline.runtime.registry`` prints the scripts in order).

Adding a stage: a :class:`Stage` here, its runner class in
:mod:`proxy_pixel_pipeline.stages`, its science module, a thin top-level
script, its settings in :mod:`.settings`, and its docs.  This module imports nothing heavy (no MPI), so that tools which only
read results can use it.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Output", "Stage", "STAGES", "stage", "stage_of_output", "upstream", "scripts"]


@dataclass(frozen=True)
class Output:
    """One product of a stage, relative to ``output_dir``.

    Attributes
    ----------
    name : str
        Attribute of :class:`~.layout.Layout` that gives its path.
    path : str
        File (``proxy_matches.fits``) or, for one file per science frame, the
        folder (``background``): the frame's file keeps its science file name.
    per_frame : bool
        One file per science frame.
    doc : str
        What it holds.
    """

    name: str
    path: str
    per_frame: bool
    doc: str

    @property
    def transient(self) -> bool:
        """Work in progress rather than a product (a hidden folder: stage 1's checkpoints),
        there only while a run is unfinished."""
        return self.path.startswith(".")


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    Attributes
    ----------
    number : int
        Position in the pipeline (1 first).
    script : str
        Top-level script that runs it (``1_Proxy_Matches.py``).
    title : str
        Short description (the ``STAGE`` header card's comment).
    runner : str
        ``module:Class`` of its :class:`~proxy_pixel_pipeline.stages.base.StageRunner`,
        imported only when the stage runs (it imports mpi4py).
    inputs : tuple of str
        The earlier stages' outputs it reads, by :class:`Output` name, in the
        order its lineage is checked (the first stale one is named).
    raw : tuple of str
        The raw inputs it reads (``darks``, ``spectral_mask``, ``pixel_lists``,
        ``science``): a product recording their bytes (``INPUTSUM``) is stale
        when they change.
    outputs : tuple of Output
        What it writes under ``output_dir``.
    """

    number: int
    script: str
    title: str
    runner: str
    inputs: tuple
    raw: tuple
    outputs: tuple

    @property
    def products(self) -> tuple:
        """The :class:`Output` s a finished run leaves (:attr:`outputs` less the transient)."""
        return tuple(o for o in self.outputs if not o.transient)

    @property
    def reads(self) -> tuple:
        """Stages whose products this stage reads (its digest includes theirs), derived
        from :attr:`inputs`."""
        return tuple(sorted({stage_of_output(name).number for name in self.inputs}))

    def load_runner(self):
        """The runner class (imports the stage's module, and so MPI)."""
        module, _, name = self.runner.partition(":")
        return getattr(importlib.import_module(module), name)


_PKG = "proxy_pixel_pipeline.stages"

STAGES = (
    Stage(1, "1_Proxy_Matches.py", "proxy matches", f"{_PKG}.matches:ProxyMatches",
          inputs=(), raw=("darks", "spectral_mask", "pixel_lists"),
          outputs=(Output("matches", "proxy_matches.fits", False,
                          "match table (MATCHES), pixel flags (PIXFLAGS), spectral mask (SPECMASK), "
                          "dark median (DARKMED)"),
                   Output("checkpoints", ".checkpoints/proxy_matches", False,
                          "finished blocks of an interrupted run (removed when done)"))),
    Stage(2, "2_Frames.py", "background and final frames", f"{_PKG}.final_frames:FinalFrames",
          inputs=("matches",), raw=("science",),
          outputs=(Output("background", "background", True,
                          "Background Frame (BKG_ERR extension with K > 1 proxies)"),
                   Output("final_no_infill", "final_no_infill", True,
                          "Final Frame = Science - Background, before infill"))),
    Stage(3, "3_Median_Fits.py", "median frame fits", f"{_PKG}.median_fits:MedianFits",
          inputs=("final_no_infill", "matches"), raw=(),
          outputs=(Output("median_frame", "median_frame.fits", False,
                          "Median Frame of the Final Frames (background-subtracted, as the "
                          "original code)"),
                   Output("median_fits", "median_fits.fits", False,
                          "double-Gaussian fits of the Median Frame's column bins (FITS, PROFILES)"))),
    Stage(4, "4_Final_Fits.py", "final frame fits", f"{_PKG}.final_fits:FinalFits",
          inputs=("final_no_infill", "median_fits", "matches"), raw=(),
          outputs=(Output("final_fits", "final_fits", True,
                          "fits of one Final Frame's column bins (FITS)"),)),
    Stage(5, "5_Infill.py", "infill and cosmic-ray removal", f"{_PKG}.cleaning:Cleaning",
          inputs=("matches", "final_no_infill", "background", "final_fits", "median_fits"), raw=(),
          outputs=(Output("final", "final", True,
                          "infilled, cosmic-ray cleaned Final Frame (ERR, DQ, INFILLED, COSMIC)"),)),
    Stage(6, "6_Spectra.py", "spectra and light curves", f"{_PKG}.spectra:Spectra",
          inputs=("matches", "final_fits", "final"), raw=(),
          outputs=(Output("spectra", "spectra", True,
                          "optimal and box spectrum of one frame (SPECTRUM)"),
                   Output("light_curves", "light_curves.fits", False,
                          "white and channel light curves with each frame's systematics "
                          "regressors (LIGHTCURVES, CHANNELS)"))),
    Stage(7, "7_Transit_Fit.py", "transit and systematics fit", f"{_PKG}.transit_fit:TransitFit",
          inputs=("light_curves",), raw=(),
          outputs=(Output("transit_depths", "transit_depths.fits", False,
                          "Rp/R* and depth of the white light and each channel, the visits "
                          "joined (DEPTHS)"),
                   Output("transit_fit", "transit_fit.fits", False,
                          "per visit and channel: systematics coefficients, mid-transit time, "
                          "chi2, BIC, red-noise factor (VISITS); each visit's detrended light "
                          "curves (DETRENDED_<visit>)"),
                   Output("transit_samples", "transit_samples.fits", False,
                          "posterior samples: the white fit's parameters (WHITE), Rp/R* of "
                          "every channel (RP_RS)"))),
)

#: Not a stage's product: where ``make_figures.py`` writes.
FIGURES = Output("figures", "figures", False, "diagnostic figures")
#: Not a stage's product: each stage's last run (wall time, memory, warnings), ``stage<N>.json``.
RUNLOG = Output("runlog", ".runlog", False, "wall time, peak memory and warnings per rank of "
                                            "each stage's last run")
#: Not a stage's product: the page ``report`` writes.
REPORT = Output("report", "report.html", False, "the run on one page")

_BY_NUMBER = {s.number: s for s in STAGES}
_BY_OUTPUT = {o.name: s for s in STAGES for o in s.outputs}


def stage(number) -> Stage:
    """The stage with this number."""
    return _BY_NUMBER[number]


def stage_of_output(name) -> Stage:
    """The stage that writes the output called ``name`` (a :class:`Output` name)."""
    return _BY_OUTPUT[name]


def outputs() -> dict:
    """Every output by name, the figures folder, run logs and report included."""
    found = {o.name: o for s in STAGES for o in s.outputs}
    found.update((o.name, o) for o in (FIGURES, RUNLOG, REPORT))
    return found


def upstream(number) -> list:
    """The stage numbers whose products ``number`` depends on, directly or not, itself included."""
    seen = set()
    todo = [number]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(stage(n).reads)
    return sorted(seen)


def scripts(folder=None) -> list:
    """The stage scripts in order (as paths under ``folder`` if given)."""
    return [s.script if folder is None else Path(folder) / s.script for s in STAGES]


if __name__ == "__main__":   # the stage list for shell scripts: one script per line
    print("\n".join(Path(s).stem for s in scripts()), file=sys.stdout)
