#!/usr/bin/env python
"""Score a pipeline run on simulated data against the simulator's truth.

Usage: ``python score.py --config data/demo/config.yaml [--truth DIR]``
Writes ``<output_dir>/score.json`` and prints a table.  The metrics are
defined in the modules of :mod:`proxy_pixel_pipeline.score`.
"""

import argparse
import sys
from pathlib import Path

from proxy_pixel_pipeline import score
from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.errors import PipelineError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare a run's outputs with the simulator's truth; write "
                    "output_dir/score.json and print a table (simulated data only).")
    parser.add_argument("--config", default="config.yaml",
                        help="pipeline configuration file (default: config.yaml)")
    parser.add_argument("--truth", type=Path, default=None, metavar="DIR",
                        help="truth folder (default: truth/ next to the config file)")
    parser.add_argument("--cr-nsigma", type=float, default=5.0, metavar="K",
                        help="a truth cosmic-ray pixel holds more than K times its noise "
                             "(default 5)")
    parser.add_argument("--brief", action="store_true",
                        help="print only the summary (the full table is in the JSON)")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE",
                        help="JSON file to write (default: <output_dir>/score.json)")
    args = parser.parse_args(argv)

    try:
        scores = score.score_run(args.config, truth_dir=args.truth, cr_nsigma=args.cr_nsigma)
        out = args.output or Path(load_config(args.config).output_dir) / "score.json"
        score.write_score(scores, out)
    except (PipelineError, OSError) as exc:
        print(f"score.py: error: {exc}", file=sys.stderr)
        return 1
    if not args.brief:
        print(score.format_table(scores))
    print("Summary against the simulator's truth:")
    print(score.format_summary(scores), end="")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
