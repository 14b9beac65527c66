"""Command-line plumbing: the stage scripts' entry point and the ``ppp`` command.

Every script is ``python N_Script.py [--config config.yaml] [--overwrite]
[--verbose]``, alone or under ``mpiexec -n N``.  A
:class:`~proxy_pixel_pipeline.errors.PipelineError` on any rank becomes one
line on stderr naming the culprit and a non-zero exit; under MPI the failing
rank aborts the whole job so that no rank hangs in a collective.

``ppp`` (installed with the package; also ``python -m proxy_pixel_pipeline``):

``ppp run CONFIG [--from N] [--to N] [--overwrite]``
    every stage of the registry in order in one job (``mpiexec -n 4 ppp run
    config.yaml``, or under Slurm): a stage whose products are current is skipped
    and the log says so; a stale, missing or interrupted one is run (an interrupted
    one resumes, as its script would), its old products replaced only once the new
    ones are complete.  ``--overwrite`` reruns current stages too.
``ppp status CONFIG``
    one line per stage: current, stale (naming the changed setting or the rewritten
    input), missing, interrupted or running; exit code 0 only when every stage is
    current (1 otherwise, 2 on bad input).  No MPI.
``ppp report CONFIG``
    writes ``output_dir/report.html`` (:mod:`proxy_pixel_pipeline.report`).  No MPI.

Every stage run, by its script or by ``run``, records its wall time, peak memory
and warnings per rank (:mod:`.runlog`).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
import traceback

from . import registry

__all__ = ["stage_main", "main"]


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

    from .config import load_config
    from ..errors import PipelineError
    from .lock import output_lock

    comm, log = _start(args.verbose)
    start = time.monotonic()
    try:
        cfg = load_config(args.config)
        log.info("stage %d on %d rank(s), config %s", stage, comm.size, args.config)
        # Rank 0 does all file work: it alone holds the output folder's lock.
        with output_lock(cfg.output_dir, stage) if comm.rank == 0 else contextlib.nullcontext():
            _run_stage(stage, cfg, comm, args.overwrite, run)
    except (PipelineError, OSError, MemoryError, KeyboardInterrupt) as exc:
        _fail(comm, f"stage {stage}", exc, args.verbose, expected=isinstance(exc, PipelineError))
        return 1
    except Exception as exc:  # a bug: show where, even without --verbose
        _fail(comm, f"stage {stage}", exc, True, expected=False)
        return 1
    comm.Barrier()
    log.info("stage %d finished in %.1f s", stage, time.monotonic() - start)
    return 0


def main(argv=None) -> int:
    """The ``ppp`` command: ``run``, ``status`` or ``report`` (see the module's docstring).

    Returns
    -------
    int
        Exit code.
    """
    args = _parser().parse_args(argv)
    return {"run": _run, "status": _status, "report": _report}[args.command](args)


def _parser():
    numbers = [s.number for s in registry.STAGES]
    parser = argparse.ArgumentParser(
        prog="ppp", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Proxy Pixel Pipeline: run every stage, tell which are current, "
                    "write the run's report.",
        epilog="Examples:\n  mpiexec -n 4 ppp run config.yaml\n  ppp status config.yaml\n"
               "  ppp report config.yaml\n(also: python -m proxy_pixel_pipeline ...)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run", help="run the stages in order, skipping those whose products are current",
        description="Run the stages in order in one job (under mpiexec or srun for several "
                    "ranks).  A stage whose products are current is skipped; a stale, missing "
                    "or interrupted one is run (an interrupted one resumes), its products "
                    "replaced once the new ones are complete.")
    run.add_argument("--from", dest="first", type=int, choices=numbers, default=numbers[0],
                     metavar="N", help=f"first stage (default {numbers[0]})")
    run.add_argument("--to", dest="last", type=int, choices=numbers, default=numbers[-1],
                     metavar="N", help=f"last stage (default {numbers[-1]})")
    run.add_argument("--overwrite", action="store_true",
                     help="rerun the stages even where their products are current")
    status = commands.add_parser(
        "status", help="one line per stage: current, stale, missing or interrupted",
        description="One line per stage: current, stale (naming the changed setting or the "
                    "rewritten input), missing, interrupted (an unfinished run to resume) or "
                    "running.  Exit code 0 only when every stage is current, 1 otherwise, "
                    "2 on bad input.")
    report = commands.add_parser(
        "report", help="write output_dir/report.html",
        description="Write the run's report, one page readable offline: every stage's status, "
                    "time, memory, counts and warnings, the settings that differ from the "
                    "defaults, the provenance, the figures, the transit results and (simulated "
                    "data) the score.")
    report.add_argument("--output", default=None, metavar="FILE",
                        help="where to write it (default: <output_dir>/report.html)")
    report.add_argument("--redraw", action="store_true",
                        help="draw every figure anew (default: only those older than their "
                             "products or absent)")
    report.add_argument("--no-score", action="store_true",
                        help="leave out the score against the simulator's truth")
    for sub in (run, status, report):
        sub.add_argument("config", help="pipeline configuration file")
        sub.add_argument("--verbose", action="store_true",
                         help="debug messages, tracebacks on errors")
    return parser


def _run(args) -> int:
    """``ppp run``: the stages from ``--from`` to ``--to`` in one job."""
    from .config import load_config
    from ..errors import PipelineError
    from .layout import Layout
    from .lineage import stage_status
    from .lock import output_lock

    comm, log = _start(args.verbose)
    start = time.monotonic()
    what = "run"
    ran, skipped = [], []
    try:
        if args.first > args.last:
            raise PipelineError(f"--from {args.first} is after --to {args.last}")
        cfg = load_config(args.config)
        layout = Layout(cfg.output_dir)
        numbers = [s.number for s in registry.STAGES if args.first <= s.number <= args.last]
        log.info("stages %d-%d on %d rank(s), config %s", numbers[0], numbers[-1], comm.size,
                 args.config)
        for number in numbers:
            what = f"stage {number}"
            with output_lock(cfg.output_dir, number) if comm.rank == 0 else contextlib.nullcontext():
                todo = None
                if comm.rank == 0:
                    status = stage_status(cfg, layout, number, cfg.science_paths())
                    todo = args.overwrite or not status.current
                    action = ("skipped" if not todo else "running it again (--overwrite)"
                              if status.current else "running it")
                    log.info("stage %d (%s): %s%s, %s", number, registry.stage(number).title,
                             status.state, f" ({status.detail})" if status.detail else "", action)
                if comm.bcast(todo):
                    began = time.monotonic()
                    _run_stage(number, cfg, comm, overwrite=True)
                    log.info("stage %d finished in %.1f s", number, time.monotonic() - began)
                    ran.append(number)
                else:
                    skipped.append(number)
            comm.Barrier()
    except (PipelineError, OSError, MemoryError, KeyboardInterrupt) as exc:
        _fail(comm, what, exc, args.verbose, expected=isinstance(exc, PipelineError))
        return 1
    except Exception as exc:  # a bug: show where, even without --verbose
        _fail(comm, what, exc, True, expected=False)
        return 1
    log.info("done in %.1f s: ran %s; skipped (current) %s; the report: ppp report %s",
             time.monotonic() - start, _listed(ran), _listed(skipped), args.config)
    return 0


def _status(args) -> int:
    """``ppp status``: one line per stage; 0 only when every stage is current."""
    from .config import load_config
    from ..errors import PipelineError
    from .layout import Layout
    from .lineage import stage_status
    from .logs import setup_logging

    setup_logging(0, 1, args.verbose)
    try:
        cfg = load_config(args.config)
        layout = Layout(cfg.output_dir)
        science = cfg.science_paths()
        statuses = [stage_status(cfg, layout, s.number, science) for s in registry.STAGES]
    except (PipelineError, OSError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: status: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"{layout.root}:")
    for status in statuses:
        print(f"  {status.line()}")
    behind = [s.number for s in statuses if not s.current]
    if behind:
        print(f"not current: stage{'s' if len(behind) > 1 else ''} {_listed(behind)}; "
              f"bring them up to date with: ppp run {args.config}")
    return 1 if behind else 0


def _report(args) -> int:
    """``ppp report``: write the run's page."""
    from ..errors import PipelineError
    from .logs import setup_logging
    from ..report import write_report

    log = setup_logging(0, 1, args.verbose)
    start = time.monotonic()
    try:
        path = write_report(args.config, output=args.output, redraw=args.redraw,
                            score=not args.no_score)
    except (PipelineError, OSError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"error: report: {exc}", file=sys.stderr, flush=True)
        return 1
    log.info("report written in %.1f s", time.monotonic() - start)
    print(path)
    return 0


def _start(verbose):
    """The communicator and this rank's logger; SIGTERM made an exception."""
    from .logs import setup_logging
    from .parallel import world

    comm = world()
    log = setup_logging(comm.rank, comm.size, verbose)
    # A batch system ends a job with SIGTERM (then SIGKILL): turn it into an exception so
    # that the output folder's lock is released and the message says what happened.
    signal.signal(signal.SIGTERM, _terminated)
    if not verbose:
        from astropy import log as astropy_log

        astropy_log.setLevel("WARNING")   # lacosmic reports every iteration at INFO
    return comm, log


def _run_stage(stage, cfg, comm, overwrite, run=None):
    """One run of ``stage`` (its registry runner, or ``run``), recorded in its run log."""
    from .runlog import recording

    run = run or (lambda cfg, comm, overwrite:
                  registry.stage(stage).load_runner()(cfg, comm, overwrite).run())
    with recording(cfg, stage, comm):
        run(cfg, comm, overwrite=overwrite)


def _listed(numbers) -> str:
    return ", ".join(map(str, numbers)) or "none"


def _terminated(signum, frame):
    raise KeyboardInterrupt(f"terminated by signal {signum} (e.g. a batch time limit); "
                            f"run the same command again to resume")


def _fail(comm, what, exc, verbose, expected):
    rank = f" (rank {comm.rank})" if comm.size > 1 else ""
    if verbose or not expected:
        traceback.print_exc()
    text = str(exc) or type(exc).__name__
    print(f"error: {what}{rank}: {text}", file=sys.stderr, flush=True)
    if comm.size > 1:
        comm.Abort(1)
