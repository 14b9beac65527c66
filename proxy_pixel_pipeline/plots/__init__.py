"""Diagnostic figures of a pipeline run, as in the method's write-up.

Every figure is made with matplotlib's Agg canvas (no display, no pyplot
state) from the files a run wrote under ``output_dir`` and goes into
``output_dir/figures/``.  :func:`make_figures` writes them all.

A figure is one function in a module of this package, the module of the stage
whose products it shows (named after that stage's products; its docstring
says which seed figure each of its functions reproduces, and in which file).
The function is marked with the :class:`~.inputs.FigureSpec` that declares
its file name and the outputs it reads (registry names, from which the "run
N_Script.py first" hints come)::

    SPECTRUM = FigureSpec("spectrum.png", needs=("spectra",))

    @SPECTRUM.draws
    def plot_spectrum(config, frame_index=None, out_dir=None) -> Path:
        run = SPECTRUM.open(config, frame_index, out_dir)
        ...
        return run.save(fig)

Adding a figure is adding such a function (to a new module or an existing
one), and nothing else: :func:`figures` finds every marked function of the
package's modules (:func:`~proxy_pixel_pipeline.runtime.discovery.declared`;
:mod:`.drawing`, the shared drawing helpers, and :mod:`.inputs`, the
declaration, hold none) and orders them by the latest stage whose products
they read, then by module name and as they are defined in their module.  Each
one is importable from this package by its name (``from
proxy_pixel_pipeline.plots import plot_spectrum``), and :data:`FIGURE_NAMES`
lists their files in that order.

Conventions: images are shown with row 0 at the bottom (as in DS9), columns
along the dispersion axis and rows across it; their stretch is the robust
ZScale of the displayed pixels (:class:`astropy.visualization.ZScaleInterval`,
kept within the 0.5-99.8 percentiles) with a colour bar in ADU; empty (NaN)
pixels are white.  The trace occupies a small band of rows, so most images
show the full width but only the rows of the spectral mask plus a margin
(:func:`trace_rows`).

Every function takes the configuration (a :class:`~proxy_pixel_pipeline.runtime.config.Config`
or the path of its YAML file), ``frame_index`` if it shows one science frame
(it reads a per-frame output: position of the frame in
``config.science_paths()``, default 0) and ``out_dir`` (default
``Layout(output_dir).figures``), and returns the written path.  A figure
whose inputs are missing raises
:class:`~proxy_pixel_pipeline.errors.PipelineError` naming the file;
:func:`make_figures` instead skips it with a log message.  No figure imports
MPI: ``make_figures.py`` runs on a login node.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import PipelineError
from ..runtime.discovery import declared
from ..runtime.layout import Layout
from ..runtime.logs import get_logger
from .drawing import trace_rows
from .inputs import FigureSpec, as_config, science_path, stage_script

#: Modules of this package that hold no figure.
_HELPERS = ("drawing", "inputs")


def _is_figure(module, value) -> bool:
    """A function defined in ``module`` and marked by :meth:`FigureSpec.draws`."""
    return (callable(value) and isinstance(getattr(value, "spec", None), FigureSpec)
            and getattr(value, "__module__", None) == module.__name__)


def figures() -> tuple:
    """Every figure function of the package, in the order :func:`make_figures` writes them.

    Returns
    -------
    tuple of callable
        The functions marked with a :class:`~.inputs.FigureSpec` in the
        package's modules, ordered by :attr:`FigureSpec.stage` (the latest
        stage whose products they read), then by module name and definition
        order.

    Raises
    ------
    ValueError
        Two figures write the same file or have the same name.
    """
    found = [f for _, f in declared(__name__, _is_figure, skip=_HELPERS)]
    for what, values in (("file", [f.spec.filename for f in found]),
                         ("name", [f.__name__ for f in found])):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"two figures with the same {what}: {twice}")
    return tuple(sorted(found, key=lambda f: f.spec.stage))


def __getattr__(name):
    """A figure function by its name (``plot_spectrum``...)."""
    for func in figures():
        if func.__name__ == name:
            return func
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    """The module's names and the figure functions'."""
    return sorted(set(globals()) | {f.__name__ for f in figures()})


#: File names of the figures, in the order :func:`make_figures` writes them.
FIGURE_NAMES = tuple(f.spec.filename for f in figures())

__all__ = ["FIGURE_NAMES", "figures", "make_figures", "trace_rows",
           *(f.__name__ for f in figures())]


def make_figures(config, frame_index=None, out_dir=None) -> list[Path]:
    """Write every diagnostic figure of a run whose inputs exist.

    Parameters
    ----------
    config : Config or str or Path
        The run's configuration, or its YAML file.
    frame_index : int, optional
        Position of the science frame shown in the per-frame figures in
        ``config.science_paths()`` (negative counts from the end); default 0.
    out_dir : str or Path, optional
        Folder for the figures; default ``output_dir/figures``.

    Returns
    -------
    list of Path
        The files written, in the order of :data:`FIGURE_NAMES` (a figure
        whose inputs are missing, unreadable or made with other settings is
        skipped with a warning in the log).

    Raises
    ------
    PipelineError
        Unreadable configuration, no science frame, or ``frame_index`` out of
        range.
    """
    cfg = as_config(config)
    layout = Layout(cfg.output_dir)
    log = get_logger()
    science = science_path(cfg, frame_index)
    frame_index = cfg.science_paths().index(science)
    written = []
    for func in figures():
        spec = func.spec
        missing = spec.missing(layout, science)
        if missing:
            name, path = missing[0]
            log.warning("figure %s skipped: %s is missing (run %s first)",
                        func.__name__, path, stage_script(name))
            continue
        kwargs = {"frame_index": frame_index} if spec.per_frame else {}
        try:
            path = func(cfg, out_dir=out_dir, **kwargs)
        except PipelineError as exc:       # e.g. an output older than the config: go on
            log.warning("figure %s skipped: %s", func.__name__, exc)
            continue
        log.info("wrote %s", path)
        written.append(path)
    return written
