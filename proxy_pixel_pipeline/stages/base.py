"""The stage base: ``run`` does the bookkeeping, ``process`` the work.

In the manner of stpipe's ``Step``: a stage runner names its registry entry
(:mod:`..runtime.registry`), which declares the products it reads (by output
name) and writes.  From that declaration :class:`StageRunner` derives

* the lineage check of every input before anything is written
  (:func:`..runtime.lineage.check_inputs`: exists, current settings, made from
  the current versions of its own inputs, raw files unchanged);
* the staging of the outputs, the resume of an interrupted run and the final
  swap (:class:`..runtime.staging.StagedOutputs`);
* the provenance of every file written (:meth:`StageRunner.write`: the inputs
  the file is made from, per frame or for the whole series, and the run's
  RUNID);
* for a :class:`FrameStage`, the frames' scatter and gather over the ranks
  (rank 0 reads and writes; uneven groups travel with ``Scatterv``/``Gatherv``).

A per-frame stage implements :meth:`FrameStage.read_frame` (rank 0),
:meth:`FrameStage.process_frames` (any rank: arrays in, arrays out) and
:meth:`FrameStage.write_frame` (rank 0); a whole-series stage implements
:meth:`StageRunner.process`.  Only runners and the runtime touch MPI; the work
itself calls MPI-free functions of :mod:`..science`.
"""

from __future__ import annotations

import numpy as np

from ..io.fitsio import observation_header, write_fits
from ..runtime import lineage, registry
from ..runtime.layout import Layout
from ..runtime.logs import get_logger
from ..runtime.parallel import gather_rows, partition, scatter_rows
from ..runtime.staging import StagedOutputs

__all__ = ["StageRunner", "FrameStage", "map_frames"]


class StageRunner:
    """One run of one stage (subclasses set :attr:`number`).

    Parameters
    ----------
    cfg : Config
    comm : MPI communicator
    overwrite : bool
        Replace the stage's existing outputs.

    Attributes
    ----------
    spec : registry.Stage
        The stage's declaration.
    layout : Layout
        The run's outputs (``output_dir``).
    science : list of Path
        The science frames (rank 0; broadcast by :meth:`run`).
    staged : StagedOutputs
        Where this run writes until it commits (rank 0).
    """

    number: int = 0

    def __init__(self, cfg, comm, overwrite=False):
        self.cfg, self.comm, self.overwrite = cfg, comm, overwrite
        self.spec = registry.stage(self.number)
        self.layout = Layout(cfg.output_dir)
        self.log = get_logger()
        self.science = None
        self.staged = None

    # ------------------------------------------------------------ bookkeeping
    def run(self):
        """Check the inputs, stage, resume, :meth:`process`, commit."""
        finished = False
        if self.rank0:
            self.science = self.cfg.science_paths()
            lineage.check_inputs(self.cfg, self.layout, self.number, self.science)
            self.check()
            self.staged = StagedOutputs(self.cfg, self.number, science_paths=self.science,
                                        inputs=self.input_files(), skip=self.skipped_outputs())
            finished = self.staged.begin(self.overwrite)
        if self.comm.bcast(finished):
            return
        self.science = self.comm.bcast(self.science)
        self.process()
        if self.rank0:
            self.staged.commit()

    @property
    def rank0(self) -> bool:
        return self.comm.rank == 0

    def input_files(self, frame=None) -> list:
        """The products this stage's outputs are made from: those of science ``frame`` (and
        the single files), or with ``frame`` None every frame's."""
        return lineage.input_files(self.cfg, self.layout, self.number, self.science, frame)

    def write(self, name, data=None, *, frame=None, header=None, extensions=(), bunit=None,
              inputs=None):
        """Rank 0: write output ``name`` (of science ``frame`` if per-frame) into the
        staging folder, its provenance derived from the declaration.

        ``inputs`` replaces the derived list of files it is made from (a product made
        from another output of the same run, e.g. the light curves from the spectra).
        """
        path = self.staged_path(name, frame)
        if inputs is None:
            inputs = ([frame] if frame is not None and "science" in self.spec.raw else [])
            inputs += self.input_files(frame)
        return write_fits(path, data, provenance=self.staged.provenance, inputs=inputs,
                          header=header, extensions=extensions, bunit=bunit)

    def staged_path(self, name, frame=None):
        """Where output ``name`` (of ``frame``) is being written by this run."""
        target = getattr(self.staged.layout, name)
        return target(frame) if frame is not None else target

    def observation_header(self, science):
        """The observation keywords of a science frame its products carry along."""
        cfg = self.cfg
        return observation_header(science, (cfg.ccdtemp_key, cfg.time_key, cfg.exptime_key))

    # --------------------------------------------------------------- the work
    def check(self):
        """Rank 0, before anything is written: stage-specific checks of the inputs."""

    def skipped_outputs(self) -> tuple:
        """Names of declared outputs this run does not make (an earlier run's are removed)."""
        return ()

    def process(self):
        """The stage's work, on every rank (whole-series stages implement it)."""
        raise NotImplementedError


class FrameStage(StageRunner):
    """A stage whose outputs are one file per science frame, frames spread over the ranks.

    :meth:`prepare` (every rank; rank 0 reads what the frames share and
    broadcasts it), then per frame :meth:`read_frame` (rank 0) ->
    :meth:`process_frames` (any rank) -> :meth:`write_frame` (rank 0), then
    :meth:`finish` (rank 0: outputs of the whole series).
    """

    def process(self):
        self.prepare()
        map_frames(self.comm, len(self.science), self.read_frame, self.process_frames,
                   self.write_frame, done=self._frame_done if self.rank0 else None)
        if self.rank0:
            self.finish()

    def _frame_done(self, i):
        return self.staged.frame_done(self.science[i])

    def prepare(self):
        """Every rank: what all frames share (rank 0 reads, then broadcasts)."""

    def read_frame(self, i) -> np.ndarray:
        """Rank 0: the input array of frame ``i`` (same shape and dtype for every frame)."""
        raise NotImplementedError

    def process_frames(self, stack) -> dict:
        """Any rank: outputs (name -> array, frames on axis 0) of a stack of inputs."""
        raise NotImplementedError

    def write_frame(self, i, out):
        """Rank 0: write frame ``i``'s outputs (:meth:`StageRunner.write`)."""
        raise NotImplementedError

    def finish(self):
        """Rank 0, after every frame: outputs of the whole series."""


def map_frames(comm, n_frames, read, compute, write, group=None, done=None):
    """Process frames in parallel: rank 0 reads and writes, ranks compute.

    Frames go through in groups (``group`` frames, default 4 per rank) to bound
    rank 0's memory; within a group contiguous runs of frames are scattered
    with ``Scatterv`` and the results gathered with ``Gatherv``.

    Parameters
    ----------
    comm : MPI communicator
    n_frames : int
    read : callable(i) -> ndarray
        Rank 0: input array of frame ``i`` (same shape and dtype for all).
    compute : callable(stack) -> dict of name -> ndarray
        Any rank: outputs for a stack of inputs, each with the frames on axis 0.
    write : callable(i, dict of name -> ndarray)
        Rank 0: store frame ``i``'s outputs.
    done : callable(i) -> bool, optional
        Rank 0: whether frame ``i`` was finished by an earlier, interrupted
        run (it is skipped).
    """
    group = group or 4 * comm.size
    log = get_logger()
    todo = None
    if comm.rank == 0:
        todo = [i for i in range(n_frames) if done is None or not done(i)]
        if len(todo) < n_frames:
            log.info("resuming: %d of %d frames done in an earlier run", n_frames - len(todo), n_frames)
    todo = comm.bcast(todo)
    finished = n_frames - len(todo)
    for start in range(0, len(todo), group):
        ids = todo[start:start + group]
        stack = np.stack([read(i) for i in ids]) if comm.rank == 0 else None
        counts = partition(len(ids), comm.size)
        local = scatter_rows(comm, stack, counts)
        outputs = compute(local)
        gathered = {name: gather_rows(comm, value, counts) for name, value in sorted(outputs.items())}
        if comm.rank == 0:
            for k, i in enumerate(ids):
                write(i, {name: value[k] for name, value in gathered.items()})
            finished += len(ids)
            log.info("%d of %d frames done", finished, n_frames)
