"""What each figure reads: its declaration and the run's files it opens.

Reproduces no seed figure itself.  Every figure declares once, as a
:class:`FigureSpec`, its file name and the outputs it reads by their names in
:mod:`~proxy_pixel_pipeline.runtime.registry` (``"matches"``, ``"final_fits"``...).
From that declaration :meth:`FigureSpec.open` finds the files (with
:class:`~proxy_pixel_pipeline.runtime.layout.Layout`) and refuses a missing one with
the stage to run, and :func:`~proxy_pixel_pipeline.plots.make_figures` skips
a figure whose files are missing with the same hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..runtime import registry
from ..runtime.config import Config, load_config
from ..errors import PipelineError
from ..io.pixel_lists import read_mask
from ..runtime.layout import Layout
from ..runtime.lineage import check_settings
from ..io.products import read_spectral_mask
from .drawing import save

__all__ = ["FigureSpec", "Inputs", "as_config", "science_path", "spectral_mask", "stage_script"]


def stage_script(output) -> str:
    """The script of the stage that writes the output called ``output`` (to rerun it)."""
    return registry.stage_of_output(output).script


def as_config(config) -> Config:
    """``config`` itself, or the configuration loaded from that YAML file."""
    return config if isinstance(config, Config) else load_config(config)


def science_path(cfg, frame_index) -> Path:
    """The science frame at ``frame_index`` (default 0) of ``cfg.science_paths()``.

    Raises
    ------
    PipelineError
        ``frame_index`` out of range (negative values count from the end).
    """
    paths = cfg.science_paths()
    index = 0 if frame_index is None else int(frame_index)
    if not -len(paths) <= index < len(paths):
        raise PipelineError(f"frame index {index} out of range: {len(paths)} science frames "
                            f"({cfg.science_frames})")
    return paths[index]


def spectral_mask(cfg, layout, shape):
    """Spectral mask as stage 1 stored it, else the config's mask file."""
    if layout.matches.is_file():
        try:
            return read_spectral_mask(layout.matches)
        except PipelineError:
            pass
    return read_mask(cfg.spectral_mask, shape)


@dataclass(frozen=True)
class Inputs:
    """A figure's run, opened: configuration, science frame and the files it needs.

    Attributes
    ----------
    cfg : Config
    layout : Layout
    science : Path or None
        Science frame shown (per-frame figures only).
    paths : dict of str to Path
        The needed outputs by registry name; every one exists.
    target : Path
        The figure file to write.
    """

    cfg: Config
    layout: Layout
    science: Path | None
    paths: dict
    target: Path

    def output(self) -> Path:
        """:attr:`target`, its folder created."""
        self.target.parent.mkdir(parents=True, exist_ok=True)
        return self.target

    def save(self, fig) -> Path:
        """Write ``fig`` to :attr:`target` (creating its folder) and return the path."""
        return save(fig, self.output())


@dataclass(frozen=True)
class FigureSpec:
    """One figure's file name and the outputs it reads.

    Attributes
    ----------
    filename : str
        File written under the figures folder.
    needs : tuple of str
        Names of the :class:`~proxy_pixel_pipeline.runtime.registry.Output` it reads.
    """

    filename: str
    needs: tuple

    def __post_init__(self):
        unknown = [n for n in self.needs if n not in registry.outputs()]
        if unknown:
            raise ValueError(f"{self.filename}: no stage writes {unknown} (see registry.STAGES)")

    @property
    def stage(self) -> int:
        """Number of the latest stage whose products the figure reads (its place in
        :func:`~proxy_pixel_pipeline.plots.make_figures`'s order)."""
        return max((registry.stage_of_output(name).number for name in self.needs), default=0)

    @property
    def per_frame(self) -> bool:
        """Whether the figure shows one science frame (it reads a per-frame output)."""
        outputs = registry.outputs()
        return any(outputs[name].per_frame for name in self.needs)

    def paths(self, layout, science=None) -> dict:
        """The needed outputs' paths by name, earliest stage first.

        Parameters
        ----------
        layout : Layout
        science : Path, optional
            Science frame (required when :attr:`per_frame`).
        """
        outputs = registry.outputs()
        found = {}
        for name in sorted(self.needs, key=lambda n: registry.stage_of_output(n).number):
            where = getattr(layout, name)
            found[name] = where(science) if outputs[name].per_frame else where
        return found

    def missing(self, layout, science=None) -> list:
        """``(output name, path)`` of each needed file that does not exist, earliest stage first."""
        return [(n, p) for n, p in self.paths(layout, science).items() if not p.is_file()]

    def open(self, config, frame_index=None, out_dir=None) -> Inputs:
        """Resolve the run's files for this figure.

        Parameters
        ----------
        config : Config or str or Path
        frame_index : int, optional
            Science frame (position in ``config.science_paths()``); default 0.
            Only for per-frame figures.
        out_dir : str or Path, optional
            Figures folder; default ``Layout(output_dir).figures``.

        Raises
        ------
        PipelineError
            A needed file is missing or made with other settings (the message
            names the stage to run), or ``frame_index`` is out of range.
        """
        cfg = as_config(config)
        layout = Layout(cfg.output_dir)
        science = science_path(cfg, frame_index) if self.per_frame else None
        missing = self.missing(layout, science)
        if missing:
            name, path = missing[0]
            raise PipelineError(f"{path}: missing; run {stage_script(name)} first")
        paths = self.paths(layout, science)
        for name, path in paths.items():     # made with the settings the figure assumes
            check_settings(cfg, name, path)
        folder = Path(out_dir) if out_dir is not None else layout.figures
        return Inputs(cfg, layout, science, paths, folder / self.filename)

    def draws(self, function):
        """Decorator: mark ``function`` as the one that draws this figure (``function.spec``).

        A function so marked, defined in a module of :mod:`proxy_pixel_pipeline.plots`, is
        one of the figures :func:`~proxy_pixel_pipeline.plots.make_figures` writes.
        """
        function.spec = self
        return function
