#!/usr/bin/env python
"""How many proxies per spectral pixel?  Background residual and stage-1 cost vs K.

For each preset (``demo``, where darks and science frames share their CCD
temperatures, and ``demo_warm``, where the science frames are warmer than every
dark), simulate one held-out data set, run stage 1 for K = 1, 4, 16, 32 and
stage 2 for each way of combining the K proxies, and score the Final Frames
against the simulator's truth: in-trace residual RMS over pixels without
cosmic rays, divided by the oracle's (true expected background subtracted),
next to the master dark's.

    python bench/proxy_count.py [--presets demo demo_warm] [--seed 101] [--ks 1 4 16 32]

Prints one table per preset (Markdown) and the stage-1 time of each K relative
to K = 1.  Single rank, in-process.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import yaml  # noqa: E402
from mpi4py import MPI  # noqa: E402

from proxy_pixel_pipeline.runtime.config import load_config  # noqa: E402
from proxy_pixel_pipeline.runtime.logs import setup_logging  # noqa: E402
from proxy_pixel_pipeline.score import score_run  # noqa: E402
from proxy_pixel_pipeline.simulate import simulate  # noqa: E402
from proxy_pixel_pipeline.stages import frames, matches  # noqa: E402

from extrapolation_floor import floor  # noqa: E402  (bench/ is on sys.path as the script's folder)

VARIANTS = [("median", False), ("clipped_mean", False), ("median", True), ("clipped_mean", True)]


def variant_config(folder, name, **settings):
    """Write a config next to the simulator's with some settings replaced."""
    base = yaml.safe_load((folder / "config.yaml").read_text())
    base.update(settings)
    path = folder / f"config_{name}.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def run_preset(preset, seed, ks, method, workdir, **overrides):
    comm = MPI.COMM_WORLD
    tag = preset + "".join(f"_{k}{v}" for k, v in overrides.items())
    folder = simulate(workdir / tag, preset=preset, seed=seed, overwrite=True, **overrides)
    rows, cost = [], {}
    # Untimed first run: compiles the kernels (numba caches them afterwards).
    matches.run(load_config(variant_config(folder, "warmup", proxy_method=method,
                                           output_dir="out_warmup")), comm, overwrite=True)
    for k in ks:
        cfg1 = load_config(variant_config(folder, f"K{k}", proxy_count=k, proxy_method=method,
                                          output_dir=f"out_K{k}"))
        start = time.perf_counter()
        matches.run(cfg1, comm, overwrite=True)
        cost[k] = time.perf_counter() - start
        for combine, offset in (VARIANTS if k > 1 else VARIANTS[:1] + VARIANTS[2:3]):
            name = f"K{k}_{combine}_{'offset' if offset else 'plain'}"
            path = variant_config(folder, name, proxy_count=k, proxy_method=method,
                                  proxy_combine=combine, proxy_offset=offset, output_dir=f"out_{name}")
            cfg = load_config(path)
            Path(cfg.output_dir).mkdir(exist_ok=True)
            shutil.copy(Path(cfg1.output_dir) / "proxy_matches.fits", Path(cfg.output_dir))
            frames.run(cfg, comm, overwrite=True)
            clean = score_run(path)["background"]["clean"]
            rows.append((k, combine, offset, clean["pipeline"]["rms_over_oracle"],
                         clean["pipeline"]["robust_rms_over_oracle"],
                         clean["master_dark"]["rms_over_oracle"], cost[k]))
            shutil.rmtree(cfg.output_dir)
    return rows, cost, floor(folder, ks)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="*", default=["demo", "demo_warm"])
    parser.add_argument("--seed", type=int, default=101, help="held out: not used to choose anything")
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 4, 16, 32])
    parser.add_argument("--method", default="lsq", choices=["lsq", "median"])
    parser.add_argument("--science-above", nargs="*", type=float, default=[],
                        help="also run demo_warm with science frames this many degC above the "
                             "warmest dark (the preset's own is 4)")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    setup_logging(0, 1, False).setLevel("WARNING")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ppp_kbench_"))
    runs = [(p, {}) for p in args.presets]
    runs += [("demo_warm", {"science_above_darks": t}) for t in args.science_above]
    for preset, overrides in runs:
        rows, cost, limit = run_preset(preset, args.seed, args.ks, args.method, workdir, **overrides)
        extra = "".join(f", {k} = {v}" for k, v in overrides.items())
        print(f"\n### {preset} (seed {args.seed}, method {args.method}{extra})\n")
        print("| K | combine | offset | RMS / oracle | robust RMS / oracle | master dark RMS / oracle "
              "| stage-1 time / K=1 |")
        print("|---|---|---|---|---|---|---|")
        for k, combine, offset, ratio, robust, master, t in rows:
            print(f"| {k} | {combine} | {'yes' if offset else 'no'} | {ratio:.3f} | {robust:.3f} "
                  f"| {master:.3f} | {t / cost[args.ks[0]]:.2f} |")
        print(f"\nInformation floor (bench/extrapolation_floor.py): {limit['floor']:.3f}; with the "
              "K proxies' own noise: " + ", ".join(f"K = {k}: {v:.3f}" for k, v in limit["k_floor"].items()))
    print(f"\n(data and outputs in {workdir})")


if __name__ == "__main__":
    main()
