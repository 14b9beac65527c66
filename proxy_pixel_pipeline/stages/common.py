"""What the stage runners share: input checks and frame-parallel execution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from ..runtime import registry
from ..runtime.config import PATH_KEYS
from ..errors import PipelineError
from ..io.fitsio import inputs_digest, parent_runs, run_id
from ..runtime.logs import get_logger
from ..runtime.staging import refuse_overwrite
from ..runtime.parallel import gather_rows, partition, scatter_rows

__all__ = ["check_previous", "refuse_overwrite", "map_frames", "match_inputs"]


def match_inputs(cfg):
    """The raw files a match table is made from, in a fixed order: darks, the mask, then
    the candidate and excluded pixel lists when given."""
    lists = [Path(p) for p in (cfg.candidate_pixels, cfg.exclude_pixels) if p is not None]
    return [*cfg.dark_paths(), Path(cfg.spectral_mask), *lists]


def check_previous(path, config, stage, made_from=(), raw_inputs=None):
    """Check that ``path`` exists, was made with the same relevant config, and from
    the current versions of ``made_from`` (outputs of earlier stages).

    Parameters
    ----------
    path : Path
        Output of an earlier stage.
    config : Config
    stage : int
        The stage that made ``path`` (its script is named in the error messages).
    made_from : sequence of Path
        Earlier products ``path`` must descend from: a product rewritten since
        (a rerun of its stage) makes ``path`` stale.
    raw_inputs : sequence of Path, optional
        The raw files (frames, mask) ``path`` was made from, in the order its
        stage read them: their bytes must still be those recorded
        (``INPUTSUM``), else ``path`` is stale.
    """
    path = Path(path)
    rerun = registry.stage(stage).script
    if not path.is_file():
        raise PipelineError(f"{path}: missing; run {rerun} first")
    with fits.open(path) as hdul:
        header = hdul[0].header
    made = header.get("CFGHASH")
    if made != config.digest(stage):
        changed = _changed_settings(header, config, stage)
        what = (", ".join(changed) if changed
                else f"CFGHASH {made} != {config.digest(stage)}")
        raise PipelineError(f"{path}: made with a different configuration ({what}); "
                            f"rerun {rerun}")
    recorded = header.get("INPUTSUM")
    if raw_inputs is not None and recorded and recorded != inputs_digest(raw_inputs):
        raise PipelineError(f"{path}: made from other input files than the config names now "
                            f"(frames or mask replaced since); rerun {rerun}")
    parents = parent_runs(path)
    for source in made_from:
        if run_id(source) not in parents:
            source = Path(source)
            raise PipelineError(f"{path}: made from an older {source.parent.name}/{source.name} "
                                f"(rerun since); rerun {rerun}")


def _changed_settings(header, config, stage):
    """'key: <file's value> in the file, <config's> in <config file>' for each setting
    behind ``stage``'s digest that visibly differs (paths compare by name)."""
    out = []
    for key, now in config.values(config.depends_on(stage)).items():
        card = f"HIERARCH PPP {key.upper()}"
        if card not in header:
            continue
        then = header[card]
        then = None if then == "null" else then
        if key in PATH_KEYS and now is not None:
            now = Path(now).name
        if not _same_value(then, now):
            out.append(f"{key}: {then} in the file, {now} in {Path(config.source).name}")
    return out


def _same_value(a, b):
    """Equal, with numbers compared by value (a header's 25.0 is the config's 25)."""
    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    return float(a) == float(b) if number(a) and number(b) else a == b


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
