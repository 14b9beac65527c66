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

from pathlib import Path

from astropy.io import fits

from ..errors import PipelineError
from ..io.provenance import inputs_digest, parent_runs, run_id
from . import registry
from .config import recorded_value

__all__ = ["input_files", "raw_files", "check_settings", "check_product", "check_inputs",
           "changed_settings"]


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


def check_product(cfg, layout, name, path, science, frame=None):
    """Raise :class:`PipelineError` naming ``path`` and the stage to rerun unless the
    product ``name`` at ``path`` (of science ``frame``, if per-frame) is current."""
    owner = registry.stage_of_output(name)
    rerun = owner.script
    path = Path(path)
    header = check_settings(cfg, name, path)
    recorded = header.get("INPUTSUM")
    if recorded and "science" not in owner.raw and recorded != inputs_digest(raw_files(cfg, owner.number)):
        raise PipelineError(f"{path}: made from other input files than the config names now "
                            f"(frames or mask replaced since); rerun {rerun}")
    parents = parent_runs(path)
    for source in input_files(cfg, layout, owner.number, science, frame):
        if run_id(source) not in parents:
            source = Path(source)
            raise PipelineError(f"{path}: made from an older {source.parent.name}/{source.name} "
                                f"(rerun since); rerun {rerun}")


def check_settings(cfg, name, path):
    """The header of the product ``name`` at ``path``; :class:`PipelineError` naming the
    stage to rerun when it is missing or was made with other settings than ``cfg``'s."""
    owner = registry.stage_of_output(name)
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: missing; run {owner.script} first")
    header = fits.getheader(path)
    made = header.get("CFGHASH")
    if made != cfg.digest(owner.number):
        changed = changed_settings(header, cfg, owner.number)
        what = ", ".join(changed) if changed else f"CFGHASH {made} != {cfg.digest(owner.number)}"
        raise PipelineError(f"{path}: made with a different configuration ({what}); "
                            f"rerun {owner.script}")
    return header


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
