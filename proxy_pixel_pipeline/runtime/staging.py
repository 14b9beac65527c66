"""Write a stage's outputs beside the old ones, swap them in once the stage succeeded.

A stage run writes into ``output_dir/.staging/stage<N>/`` (the same layout as
``output_dir``).  Only when every output is written are they moved into place,
so a run that fails or is killed leaves the previous run's products intact.
The staging folder is keyed by everything its files depend on (pipeline
version, the stage's config digest, the input files): a rerun of the same
command after a kill finds the frames already finished and computes only the
rest, with the same RUNID, so the products equal those of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .. import __version__
from . import registry
from ..io.atomic import write_text
from .checkpoint import run_key
from ..errors import PipelineError
from .layout import Layout
from .logs import get_logger

__all__ = ["StagedOutputs", "refuse_overwrite", "staging_folder"]

_KEY_FILE = "RUN.json"
_COMMITTING = "COMMITTING"


def staging_folder(output_dir, stage) -> Path:
    """Where a run of ``stage`` writes until it commits (there only while it is unfinished)."""
    return Path(output_dir) / ".staging" / f"stage{stage}"


def refuse_overwrite(outputs, overwrite):
    """Error naming the first existing output unless ``overwrite`` was asked for."""
    if not overwrite:
        existing = next((Path(p) for p in outputs if Path(p).exists()), None)
        if existing is not None:
            raise PipelineError(f"{existing}: exists; pass --overwrite to replace this stage's outputs")


class StagedOutputs:
    """The outputs of one stage run, staged until :meth:`commit`.

    Parameters
    ----------
    cfg : Config
    stage : int
        The stage (:mod:`.registry`).
    inputs : sequence of Path
        Every file the outputs are made from (frames, earlier products): a
        change to any of them makes earlier staged files useless.
    science_paths : sequence of Path
        Science frames, for the stage's per-frame outputs.
    skip : sequence of str
        Names of the stage's outputs this run does not make (e.g. stage 6's
        depths without a transit model): not required, and an earlier run's
        file is removed when the outputs are swapped in.

    Attributes
    ----------
    layout : Layout
        Where the stage writes (inside the staging folder).
    provenance : Provenance
        What every output of this run records (set by :meth:`begin`: a
        resumed run keeps the RUNID of the run it continues).
    """

    def __init__(self, cfg, stage, inputs=(), science_paths=(), skip=()):
        self.stage = stage
        self.skip = tuple(skip)
        self.final = Layout(cfg.output_dir)
        self.root = staging_folder(self.final.root, stage)
        self.layout = Layout(self.root)
        self.science_paths = list(science_paths)
        self.key = run_key(__version__, cfg.digest(stage), files=[*inputs, *self.science_paths])
        self.cfg = cfg
        self.provenance = cfg.provenance(stage)

    def begin(self, overwrite=False) -> bool:
        """Prepare the staging folder; resume an interrupted run of the same key.

        Parameters
        ----------
        overwrite : bool
            Existing outputs may be replaced (else one is an error naming it).

        Returns
        -------
        bool
            True if an earlier run of the same key had finished and was being
            swapped in when it stopped: the swap is completed and nothing is
            left to do (the outputs it had already moved are its own, so this
            needs no ``overwrite``).
        """
        log = get_logger()
        recorded = self._recorded()
        same = recorded.get("key") == self.key
        if same and (self.root / _COMMITTING).exists():
            self.provenance = self.cfg.provenance(self.stage, recorded["runid"])
            log.info("completing the swap of an earlier run's outputs")
            self._move_all()
            return True
        pairs = self._pairs()
        refuse_overwrite([final for _, final in pairs], overwrite)
        if same:
            # one RUNID for all of this run's files
            self.provenance = self.cfg.provenance(self.stage, recorded["runid"])
            n = sum(Path(staged).is_file() for staged, _ in pairs)
            if n:
                log.info("resuming: %d of %d outputs done in an earlier run", n, len(pairs))
            return False
        if self.root.exists():
            log.info("discarding the unfinished outputs of a run with other inputs or settings")
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        write_text(self.root / _KEY_FILE, json.dumps({"key": self.key, "runid": self.provenance.runid}))
        return False

    def frame_done(self, science) -> bool:
        """Whether every per-frame output of ``science`` is already staged."""
        return all(Path(getattr(self.layout, out.name)(science)).is_file()
                   for out in self._per_frame_outputs())

    def commit(self):
        """Move every staged output into place and remove the staging folder."""
        missing = [s for s, _ in self._pairs() if not Path(s).is_file()]
        if missing:
            raise RuntimeError(f"stage {self.stage}: {len(missing)} outputs were not written, "
                               f"e.g. {missing[0]}")
        write_text(self.root / _COMMITTING, "")
        self._move_all()

    # ------------------------------------------------------------------
    def _per_frame_outputs(self):
        return [o for o in registry.stage(self.stage).outputs if o.per_frame]

    def _pairs(self):
        staged = self.layout.stage_outputs(self.stage, self.science_paths)
        final = self.final.stage_outputs(self.stage, self.science_paths)
        return [(s, f) for s, f in zip(staged, final) if not self._skipped(f)]

    def _skipped(self, final):
        return any(Path(final) == Path(getattr(self.final, name)) for name in self.skip)

    def _move_all(self):
        for name in self.skip:              # an earlier run's product this run does not make
            Path(getattr(self.final, name)).unlink(missing_ok=True)
        for staged, final in self._pairs():
            if Path(staged).is_file():
                Path(final).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
        shutil.rmtree(self.root, ignore_errors=True)
        try:
            self.root.parent.rmdir()        # .staging, if no other stage uses it
        except OSError:
            pass

    def _recorded(self) -> dict:
        try:
            return json.loads((self.root / _KEY_FILE).read_text())
        except (OSError, ValueError):
            return {}
