"""Where each stage's outputs live under ``output_dir`` (a contract users' tools read).

The names and paths are the :class:`~.registry.Output` declarations of
:mod:`.registry`; :class:`Layout` only joins them to a run's folder.
"""

from __future__ import annotations

from pathlib import Path

from . import registry

__all__ = ["Layout"]


class Layout:
    """Output file names of a run.

    Every output declared in :mod:`.registry` is an attribute: a path for a
    single file (``layout.matches``), a function of the science frame's path
    for one file per frame (``layout.background(science)``, which keeps the
    science file's name).

    Parameters
    ----------
    output_dir : str or Path
        The config's ``output_dir``.
    """

    _OUTPUTS = registry.outputs()

    def __init__(self, output_dir):
        self.root = Path(output_dir)

    def __getattr__(self, name):
        try:
            out = self._OUTPUTS[name]
        except KeyError:
            raise AttributeError(f"Layout has no output '{name}'") from None
        where = self.root.joinpath(*out.path.split("/"))
        if out.per_frame:
            return lambda science: where / Path(science).name
        return where

    def __dir__(self):
        return [*super().__dir__(), *self._OUTPUTS]

    def stage_outputs(self, number, science_paths=()):
        """Every file stage ``number`` writes (per-frame ones for ``science_paths``)."""
        paths = []
        for out in registry.stage(number).outputs:
            value = getattr(self, out.name)
            paths += [value(p) for p in science_paths] if out.per_frame else [value]
        return paths
