#!/usr/bin/env python
"""Write simulated CUTE-like dark and science frames with their ground truth.

Example::

    python simulate.py --preset demo --out data/demo --seed 1
    python simulate.py --preset wasp189b --visits 3 --out data/w189c \
        --set ramp_shape=phase_cubic jitter_median=5.0

All physics lives in :mod:`proxy_pixel_pipeline.simulate`; this script only
parses the command line and reports where the files went.
"""

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    from proxy_pixel_pipeline import simulate as sim

    parser = argparse.ArgumentParser(
        description="Simulate CUTE-like dark and science frames, a spectral mask, a ready "
                    "pipeline config.yaml and the ground truth (truth/).")
    parser.add_argument("--preset", default="demo", choices=list(sim.PRESETS),
                        help="parameter set (default: demo; tiny for tests, cute for the real "
                             "515x2048 geometry, *_warm for science frames warmer than every dark)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed (default: a fresh one, printed and stored as SIMSEED)")
    parser.add_argument("--missing-value", type=int, default=None, metavar="N",
                        help="write int32 frames with N marking missing pixels "
                             "(default: float32 frames with NaN)")
    parser.add_argument("--visits", type=int, default=None, metavar="N",
                        help="N visits of the planet, one period apart on one ephemeris: "
                             "OUT/visit1 ... OUT/visitN, each with its own frames, truth and "
                             "config.yaml (presets with a planet: wasp189b, kelt9b)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty folder, replacing earlier simulator files")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="settings",
                        help="override fields of the preset (SimulationParameters, documented "
                             "in proxy_pixel_pipeline/simulate/parameters.py): Python literals, "
                             "else text, e.g. ramp_shape=phase_cubic jitter_median=5.0 "
                             "'band_glow=(6.0, 10.0)'")
    args = parser.parse_args(argv)

    try:
        overrides = sim.parse_overrides(args.settings)
    except ValueError as exc:
        print(f"simulate.py: error: --set {exc}", file=sys.stderr)
        return 1
    if args.missing_value is not None:
        overrides["missing_value"] = args.missing_value
    start = time.perf_counter()
    try:
        seed = args.seed
        if seed is None:  # choose it here so that it can be printed
            import numpy as np
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        out = sim.simulate(args.out, preset=args.preset, seed=seed, overwrite=args.overwrite,
                           visits=args.visits, **overrides)
    except (FileExistsError, ValueError, TypeError) as exc:
        print(f"simulate.py: error: {exc}", file=sys.stderr)
        return 1
    from proxy_pixel_pipeline.runtime import registry

    params = sim.PRESETS[args.preset]
    folders = [out] if args.visits is None else [out / f"visit{k}"
                                                 for k in range(1, args.visits + 1)]
    each = "" if args.visits is None else f" in each of {args.visits} visits"
    print(f"preset {args.preset}, seed {seed}: wrote {params.n_darks} darks and "
          f"{params.n_science} science frames ({params.n_rows} x {params.n_columns}){each} "
          f"in {time.perf_counter() - start:.1f} s")
    for folder in folders:
        print(f"  frames:        {folder / 'darks'}, {folder / 'science'}")
        print(f"  spectral mask: {folder / 'spectral_mask.fits'}")
        print(f"  ground truth:  {folder / 'truth'}")
        print(f"  config:        {folder / 'config.yaml'}  (give this to the pipeline)")
    if args.overwrite and (out / "output").is_dir():
        print(f"note: {out / 'output'} holds pipeline products of the earlier data; run every "
              f"stage again from {registry.stage(1).script} with --overwrite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
