"""Command-line plumbing shared by the stage scripts.

Every script is ``python N_Script.py [--config config.yaml] [--overwrite]
[--verbose]``, alone or under ``mpiexec -n N``.  A
:class:`~proxy_pixel_pipeline.errors.PipelineError` on any rank becomes one
line on stderr naming the culprit and a non-zero exit; under MPI the failing
rank aborts the whole job so that no rank hangs in a collective.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
import traceback

__all__ = ["stage_main"]


def stage_main(stage, description, run=None, argv=None):
    """Parse the common arguments and run one stage.

    Parameters
    ----------
    stage : int
        Stage number (:mod:`.registry`): its runner is called.
    description : str
        ``--help`` text.
    run : callable(cfg, comm, overwrite), optional
        Called instead of the registry's runner class (tests use this).
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 success, 1 bad input or failure.
    """
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml",
                        help="pipeline configuration file (default: config.yaml)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace this stage's existing outputs")
    parser.add_argument("--verbose", action="store_true",
                        help="debug messages from every rank, tracebacks on errors")
    args = parser.parse_args(argv)

    from . import registry
    from .config import load_config
    from ..errors import PipelineError
    from .lock import output_lock
    from .logs import setup_logging
    from .parallel import world

    comm = world()
    log = setup_logging(comm.rank, comm.size, args.verbose)
    # A batch system ends a job with SIGTERM (then SIGKILL): turn it into an exception so
    # that the output folder's lock is released and the message says what happened.
    signal.signal(signal.SIGTERM, _terminated)
    if not args.verbose:
        from astropy import log as astropy_log

        astropy_log.setLevel("WARNING")   # lacosmic reports every iteration at INFO
    start = time.monotonic()
    try:
        cfg = load_config(args.config)
        log.info("stage %d on %d rank(s), config %s", stage, comm.size, args.config)
        run = run or (lambda cfg, comm, overwrite:
                      registry.stage(stage).load_runner()(cfg, comm, overwrite).run())
        # Rank 0 does all file work: it alone holds the output folder's lock.
        with output_lock(cfg.output_dir, stage) if comm.rank == 0 else contextlib.nullcontext():
            run(cfg, comm, overwrite=args.overwrite)
    except (PipelineError, OSError, MemoryError, KeyboardInterrupt) as exc:
        _fail(comm, stage, exc, args.verbose, expected=isinstance(exc, PipelineError))
        return 1
    except Exception as exc:  # a bug: show where, even without --verbose
        _fail(comm, stage, exc, True, expected=False)
        return 1
    comm.Barrier()
    log.info("stage %d finished in %.1f s", stage, time.monotonic() - start)
    return 0


def _terminated(signum, frame):
    raise KeyboardInterrupt(f"terminated by signal {signum} (e.g. a batch time limit); "
                            f"run the same command again to resume")


def _fail(comm, stage, exc, verbose, expected):
    rank = f" (rank {comm.rank})" if comm.size > 1 else ""
    if verbose or not expected:
        traceback.print_exc()
    text = str(exc) or type(exc).__name__
    print(f"error: stage {stage}{rank}: {text}", file=sys.stderr, flush=True)
    if comm.size > 1:
        comm.Abort(1)
