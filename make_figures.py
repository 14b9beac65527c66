#!/usr/bin/env python
"""Diagnostic figures of a pipeline run (after the stages; one process, no MPI).

Usage: ``python make_figures.py --config config.yaml [--frame N]``
Writes PNG and GIF files into ``<output_dir>/figures/`` (see
``proxy_pixel_pipeline.plots`` for the list) and prints their paths; figures
whose inputs are missing (a stage not run yet) are skipped with a warning.
"""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml",
                        help="pipeline configuration file (default: config.yaml)")
    parser.add_argument("--frame", type=int, default=None, metavar="N",
                        help="science frame shown in the per-frame figures: its position in the "
                             "sorted science_frames list (default 0, the first)")
    parser.add_argument("--out-dir", default=None,
                        help="folder for the figures (default: <output_dir>/figures)")
    parser.add_argument("--verbose", action="store_true",
                        help="debug messages, tracebacks on errors")
    args = parser.parse_args(argv)

    from proxy_pixel_pipeline.errors import PipelineError
    from proxy_pixel_pipeline.runtime.logs import setup_logging
    from proxy_pixel_pipeline.plots import make_figures

    setup_logging(0, 1, args.verbose)
    try:
        written = make_figures(args.config, frame_index=args.frame, out_dir=args.out_dir)
    except (PipelineError, OSError) as exc:
        if args.verbose:
            raise
        print(f"error: make_figures: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
