"""Lineage: whether a stage's inputs are current, derived from the registry's declarations.

A product is *current* when it exists, was made with the settings its stage
has now (``CFGHASH`` against :meth:`~.config.Config.digest`), from raw files
whose bytes are unchanged (``INPUTSUM``), and from the current versions of the
products its stage declares as inputs (their ``RUNID`` among its ``PARENTn``).
Which files a product is made from follows from the registry: a per-frame
product of frame *f* from the per-frame inputs of *f* and the single-file
inputs; a single-file product from every frame's.  The stage base checks its
inputs with :func:`check_inputs`; ``status`` asks :func:`stage_status`.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from ..errors import PipelineError
from ..io.provenance import inputs_digest, parent_runs, run_id
from . import registry
from .config import recorded_value
from .lock import lock_holder
from .staging import staging_folder

__all__ = ["input_files", "raw_files", "product_problem", "check_settings", "check_product",
           "check_inputs", "changed_settings", "StageStatus", "stage_status", "STATES"]


def _files(layout, name, science, frame=None):
    out = registry.outputs()[name]
    value = getattr(layout, name)
    if not out.per_frame:
        return [value]
    return [value(frame)] if frame is not None else [value(p) for p in science]


def input_files(cfg, layout, number, science, frame=None) -> list:
    """The earlier products stage ``number`` makes its outputs from, in declared order:
    for one science ``frame`` (its per-frame outputs) or for all (its single files)."""
    files = []
    for name in registry.stage(number).inputs:
        files += _files(layout, name, science, frame)
    return files


def raw_files(cfg, number, frame=None) -> list:
    """The raw files stage ``number`` reads (darks, mask, pixel lists; the science frame
    of ``frame``), in a fixed order."""
    files = []
    for kind in registry.stage(number).raw:
        if kind == "darks":
            files += cfg.dark_paths()
        elif kind == "spectral_mask":
            files.append(Path(cfg.spectral_mask))
        elif kind == "pixel_lists":
            files += [Path(p) for p in (cfg.candidate_pixels, cfg.exclude_pixels) if p is not None]
        elif kind == "science" and frame is not None:
            files.append(Path(frame))
    return files


def product_problem(cfg, layout, name, path, science, frame=None):
    """Why the product ``name`` at ``path`` (of science ``frame``, if per-frame) is not
    current: ``("missing", "missing")``, ``("stale", why)`` (the changed settings, the raw
    files replaced, or the input rewritten since), or None when it is current."""
    owner = registry.stage_of_output(name)
    path = Path(path)
    if not path.is_file():
        return "missing", "missing"
    header = fits.getheader(path)
    other = _other_settings(cfg, owner, header)
    if other:
        return "stale", other
    recorded = header.get("INPUTSUM")
    if recorded and "science" not in owner.raw and recorded != inputs_digest(raw_files(cfg, owner.number)):
        return "stale", ("made from other input files than the config names now "
                         "(frames or mask replaced since)")
    parents = parent_runs(path)
    for source in input_files(cfg, layout, owner.number, science, frame):
        if run_id(source) not in parents:
            source = Path(source)
            return "stale", f"made from an older {source.parent.name}/{source.name} (rerun since)"
    return None


def check_product(cfg, layout, name, path, science, frame=None):
    """Raise :class:`PipelineError` naming ``path`` and the stage to rerun unless the
    product ``name`` at ``path`` (of science ``frame``, if per-frame) is current."""
    problem = product_problem(cfg, layout, name, path, science, frame)
    if problem is not None:
        state, why = problem
        rerun = registry.stage_of_output(name).script
        hint = f"run {rerun} first" if state == "missing" else f"rerun {rerun}"
        raise PipelineError(f"{path}: {why}; {hint}")


def check_settings(cfg, name, path):
    """The header of the product ``name`` at ``path``; :class:`PipelineError` naming the
    stage to rerun when it is missing or was made with other settings than ``cfg``'s."""
    owner = registry.stage_of_output(name)
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: missing; run {owner.script} first")
    header = fits.getheader(path)
    other = _other_settings(cfg, owner, header)
    if other:
        raise PipelineError(f"{path}: {other}; rerun {owner.script}")
    return header


def _other_settings(cfg, owner, header):
    """'made with a different configuration (the settings that differ)', or None when
    the product's ``CFGHASH`` is its stage's digest now."""
    made = header.get("CFGHASH")
    if made == cfg.digest(owner.number):
        return None
    changed = changed_settings(header, cfg, owner.number)
    what = ", ".join(changed) if changed else f"CFGHASH {made} != {cfg.digest(owner.number)}"
    return f"made with a different configuration ({what})"


def check_inputs(cfg, layout, number, science):
    """Check every product stage ``number`` reads, in its declared order (the first stale
    one is named with the stage to rerun)."""
    for name in registry.stage(number).inputs:
        per_frame = registry.outputs()[name].per_frame
        for frame in (science if per_frame else [None]):
            path = _files(layout, name, science, frame)[0]
            check_product(cfg, layout, name, path, science, frame)


def changed_settings(header, config, stage):
    """'key: <file's value> in the file, <config's> in <config file>' for each setting
    behind ``stage``'s digest that visibly differs (paths compare by name)."""
    out = []
    for key, now in config.values(config.depends_on(stage)).items():
        card = f"HIERARCH PPP {key.upper()}"
        if card not in header:
            continue
        then, now = header[card], recorded_value(key, now)
        if not _same_value(then, now):
            out.append(f"{key}: {then} in the file, {now} in {Path(config.source).name}")
    return out


def _same_value(a, b):
    """Equal, with numbers compared by value (a header's 25.0 is the config's 25)."""
    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    return float(a) == float(b) if number(a) and number(b) else a == b


#: What :func:`stage_status` can say of a stage, best first.
STATES = ("current", "stale", "missing", "interrupted", "running")


@dataclass(frozen=True)
class StageStatus:
    """Whether a stage's products are current, and if not why.

    Attributes
    ----------
    number : int
        The stage.
    state : str
        One of :data:`STATES`: ``current`` (every product made with the current settings
        from the current inputs), ``stale`` (made with other settings, from replaced raw
        files or from an input rewritten since), ``missing`` (a product is not there),
        ``interrupted`` (an unfinished run left its staging folder or checkpoints: running
        the stage again resumes it) or ``running`` (a live job holds the output folder's
        lock for this stage).
    detail : str
        Why, naming the changed setting, the rewritten input or the missing file (empty
        when current).
    """

    number: int
    state: str
    detail: str = ""

    @property
    def current(self) -> bool:
        return self.state == "current"

    def line(self) -> str:
        """One line: ``stage 4  4_Final_Fits.py  stale: <why>``."""
        width = max(len(s.script) for s in registry.STAGES)
        return (f"stage {self.number}  {registry.stage(self.number).script:<{width}}  {self.state}"
                + (f": {self.detail}" if self.detail else ""))


def stage_status(cfg, layout, number, science) -> StageStatus:
    """Whether stage ``number``'s products under ``layout`` are current (:class:`StageStatus`).

    Parameters
    ----------
    cfg : Config
    layout : Layout
        The run's outputs.
    number : int
        The stage.
    science : list of Path
        The science frames (``cfg.science_paths()``).

    Every declared product is checked as a later stage would check it
    (:func:`product_problem`); the first problem is named, with the path relative
    to ``output_dir``.
    """
    spec = registry.stage(number)
    root = Path(layout.root)

    def rel(path):
        path = Path(path)
        return path.relative_to(root).as_posix() if root in path.parents else str(path)

    holder = lock_holder(root)
    mine = (holder or {}).get("pid") == os.getpid() and holder.get("host") == socket.gethostname()
    if holder and not mine and str(holder.get("stage")) == str(number):
        return StageStatus(number, "running", f"pid {holder.get('pid')} on {holder.get('host')}, "
                                              f"started {holder.get('start')}")
    left = [p for p in (staging_folder(root, number),
                        *(getattr(layout, o.name) for o in spec.outputs if o.transient))
            if Path(p).exists()]
    if left:
        return StageStatus(number, "interrupted", f"an unfinished run left {rel(left[0])}/ "
                                                  f"(running the stage again resumes it)")
    files = [(o.name, f, frame) for o in spec.products
             for frame in (science if o.per_frame else [None])
             for f in _files(layout, o.name, science, frame)]
    absent = [f for _, f, _ in files if not Path(f).is_file()]
    if absent:
        what = "no products" if len(absent) == len(files) else f"{len(absent)} of {len(files)} files"
        return StageStatus(number, "missing", f"{what}, e.g. {rel(absent[0])}")
    for name, path, frame in files:
        try:
            problem = product_problem(cfg, layout, name, path, science, frame)
        except OSError as exc:
            problem = "stale", f"unreadable ({exc})"
        if problem is not None:
            return StageStatus(number, problem[0], f"{rel(path)}: {problem[1]}")
    return StageStatus(number, "current")
