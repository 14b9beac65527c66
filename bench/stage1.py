#!/usr/bin/env python
"""Stage 1 (proxy matching) benchmarks: each sub-command prints a table, then its ratios.

    python bench/stage1.py lsq      [--preset cute]  LSQ time vs one float32 matrix product
    python bench/stage1.py median   [--preset demo]  exact vs straightforward loop; fast vs exact
    python bench/stage1.py mpi      [--preset demo]  1 vs 2 ranks (strong scaling), load balance
    python bench/stage1.py memory   [--preset cute]  the real stage under mpiexec: peak memory per rank
    python bench/stage1.py scaling  [--preset cute]  time vs spectral pixels, candidates, darks
    python bench/stage1.py all                       everything above (about 15 min)

Data are simulated once into ``--data`` (default /tmp/ppp-bench/<preset>, ~1 GB
for cute) and the prepared series cached there.  Timings run in this process
with the stage's own settings (BLAS threads = ``--threads``, compiled scans on
one thread), on a subset of spectral pixels where said, extrapolated with the
measured per-pixel rate (stage 1 costs the same per spectral pixel).  See
bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import yaml  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from proxy_pixel_pipeline.science import matching  # noqa: E402
from proxy_pixel_pipeline.science.matching import CandidateSet, MatchResult, match_block  # noqa: E402
from proxy_pixel_pipeline.science.matching import kernels  # noqa: E402
from proxy_pixel_pipeline.science.matching.candidates import SpectralBlock  # noqa: E402
from proxy_pixel_pipeline.science.matching.driver import lsq_prefilter  # noqa: E402

DEFAULTS = dict(block_size=512, candidate_chunk=4096, prefilter_count=64, median_candidates=10,
                min_valid_samples=10)


# --------------------------------------------------------------------------- helpers


def machine():
    """One line describing this machine and the numeric libraries."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                     for i in threadpool_info() if i.get("user_api") == "blas")
    return (f"{cpu}, {os.cpu_count()} cores; numpy {np.__version__}, BLAS {blas}; "
            f"kernels {kernels.backend_info()}; "
            f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")


def table(rows, header):
    """Print a Markdown table."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    print()


def ratio_line(name, measured, target, met, note=""):
    print(f"RATIO {name}: {measured} (target {target}) -> {'MET' if met else 'NOT MET'}"
          + (f"  [{note}]" if note else ""))


def dataset(args):
    """Simulate the preset if needed; return (config path, spec, cand) prepared as stage 1 does."""
    folder = Path(args.data) / args.preset
    config = folder / "config.yaml"
    if not config.exists():
        from proxy_pixel_pipeline.simulate import simulate

        print(f"simulating preset {args.preset} into {folder} ...", flush=True)
        simulate(folder, preset=args.preset, seed=args.seed, overwrite=True)
    cache = folder / "prepared.npz"
    if not cache.exists():
        from proxy_pixel_pipeline.runtime.config import load_config
        from proxy_pixel_pipeline.stages.matches import _prepare

        print("preparing series (reading darks, flagging pixels) ...", flush=True)
        prep = _prepare(load_config(config))
        np.savez(cache, spec=prep["spec"], cand=prep["cand"])
    with np.load(cache) as data:
        return config, data["spec"], data["cand"]


def subset(spec, n):
    """``n`` spectral pixels spread over the whole list (contiguous runs of 256)."""
    if n >= len(spec):
        return spec
    starts = np.linspace(0, len(spec) - 256, max(1, n // 256)).astype(int)
    return np.concatenate([spec[s:s + 256] for s in starts])[:n]


def run_blocks(spec, cs, block=256, **kw):
    """match_block over consecutive blocks; returns (MatchResult, seconds)."""
    start = time.perf_counter()
    parts = [match_block(spec[b:b + block], cs, **kw) for b in range(0, len(spec), block)]
    return MatchResult.concatenate(parts), time.perf_counter() - start


def reference_product(spec, cand, threads):
    """Best time of the plain float32 product spec @ cand.T over a few blockings."""
    s = np.ascontiguousarray(np.nan_to_num(spec), np.float32)
    c = np.ascontiguousarray(np.nan_to_num(cand), np.float32)
    best = None
    with threadpool_limits(threads):
        for rows, cols in ((256, 4096), (1024, 16384), (len(s), 65536)):
            out = np.empty((min(rows, len(s)), min(cols, len(c))), np.float32)
            np.matmul(s[:out.shape[0]], c[:out.shape[1]].T, out=out)          # warm up
            start = time.perf_counter()
            for i in range(0, len(s), rows):
                si = s[i:i + rows]
                for j in range(0, len(c), cols):
                    cj = c[j:j + cols]
                    np.matmul(si, cj.T, out=out[:len(si), :len(cj)])
            t = time.perf_counter() - start
            best = t if best is None else min(best, t)
    return best


def brute_force_lsq(spec, cand, min_samples=10, chunk=65536):
    """Best candidate by mean squared residual, all pairs in float64 (masked sums)."""
    ws = (~np.isnan(spec)).astype(np.float64)
    s0 = np.nan_to_num(spec).astype(np.float64)
    best = np.full(len(spec), np.inf)
    arg = np.full(len(spec), -1)
    for j in range(0, len(cand), chunk):
        c = cand[j:j + chunk]
        wc = (~np.isnan(c)).astype(np.float64)
        c0 = np.nan_to_num(c).astype(np.float64)
        n = ws @ wc.T
        with np.errstate(invalid="ignore", divide="ignore"):
            score = ((s0 * s0) @ wc.T - 2 * (s0 @ c0.T) + ws @ (c0 * c0).T) / n
        score[n < min_samples] = np.inf
        i = np.argmin(score, axis=1)
        v = score[np.arange(len(spec)), i]
        better = v < best
        best[better], arg[better] = v[better], i[better] + j
    return arg


def phases_line(phases, n):
    tot = sum(phases.values())
    return ", ".join(f"{k} {v / n * 1e3:.3f} ms/px ({v / tot:.0%})"
                     for k, v in sorted(phases.items(), key=lambda kv: -kv[1]))


# --------------------------------------------------------------------------- sub-commands


def cmd_lsq(args):
    config, spec, cand = dataset(args)
    n_spec, n_darks = spec.shape
    sub = subset(spec, args.pixels)
    print(f"## LSQ: {args.preset}, {n_spec} spectral x {len(cand)} candidates x {n_darks} darks; "
          f"timing {len(sub)} spectral pixels, {args.threads} BLAS thread(s)\n")
    with threadpool_limits(args.threads), matching.kernel_threads(1):
        start = time.perf_counter()
        cs = CandidateSet(cand, args.chunk)
        t_prep = time.perf_counter() - start
        match_block(sub[:16], cs, method="lsq")                          # compile / warm up
        phases = defaultdict(float)
        result, t_stage = run_blocks(sub, cs, args.block, method="lsq",
                                     prefilter_count=args.prefilter, phases=phases)
    t_ref = reference_product(sub, cand, args.threads)
    scale = n_spec / len(sub)
    rows = [["stage 1 matching (match_block, LSQ)", f"{t_stage:.2f}", f"{t_stage * scale:.1f}",
             f"{t_stage / len(sub) * 1e3:.3f}"],
            ["float32 product S @ C.T, same size", f"{t_ref:.2f}", f"{t_ref * scale:.1f}",
             f"{t_ref / len(sub) * 1e3:.3f}"],
            ["candidate preparation (once per rank)", f"{t_prep:.2f}", f"{t_prep:.2f}", "-"]]
    table(rows, ["what", f"s ({len(sub)} px)", f"s (all {n_spec} px, extrapolated)", "ms/px"])
    print("where the time goes:", phases_line(phases, len(sub)), "\n")

    # Accuracy: float32 prefilter + float64 rescoring vs float64 brute force.
    step = max(1, len(sub) // args.check)
    check = sub[::step][:args.check]
    picked = result.index[::step][:args.check, 0]
    brute = brute_force_lsq(check, cand)
    with threadpool_limits(args.threads), matching.kernel_threads(1):
        f32_top1 = lsq_prefilter(SpectralBlock(check), cs, 1, 10)[:, 0]
    same = np.mean(picked == brute)
    same32 = np.mean(f32_top1 == brute)
    table([["float32 products + float64 rescoring of the M best (the pipeline)", f"{same:.2%}"],
           ["float32 products alone (best float32 score)", f"{same32:.2%}"]],
          ["LSQ choice identical to a float64 brute force", f"{len(check)} pixels"])
    ratio = t_stage / t_ref
    ratio_line("LSQ compute / float32 product", f"{ratio:.2f}x", "<= 2x", ratio <= 2.0,
               f"{len(sub)} of {n_spec} pixels")
    ratio_line("LSQ identical to float64 brute force", f"{same:.2%}", "100%", same == 1.0)
    return dict(lsq_ratio=ratio, lsq_same=same)


def cmd_median(args):
    config, spec, cand = dataset(args)
    n_spec = len(spec)
    print(f"## Median rule: {args.preset}, {n_spec} spectral x {len(cand)} candidates x "
          f"{spec.shape[1]} darks, 1 thread\n")
    ref_idx = np.linspace(0, n_spec - 1, args.reference_pixels).astype(int)
    with threadpool_limits(1), matching.kernel_threads(1):
        start = time.perf_counter()
        ref = matching.reference_match(spec[ref_idx], cand, "median")
        t_ref = (time.perf_counter() - start) / len(ref_idx) * n_spec
        cs = CandidateSet(cand, args.chunk)
        match_block(spec[:16], cs, method="median", median_mode="exact")
        match_block(spec[:16], cs, method="median", median_mode="fast")
        phases = defaultdict(float)
        exact, t_exact = run_blocks(spec, cs, args.block, method="median",
                                    median_mode="exact", phases=phases)
        fast = {}
        for m in args.prefilter_sweep:
            fast[m] = run_blocks(spec, cs, args.block, method="median", median_mode="fast",
                                 prefilter_count=m)
    same_ref = np.mean(exact.index[ref_idx, 0] == ref)
    rows = [["straightforward loop (numpy, per pixel)", f"{t_ref:.0f}",
             f"{t_ref / n_spec * 1e3:.2f}", f"{len(ref_idx)} px timed, extrapolated", "-"],
            ["exact mode", f"{t_exact:.1f}", f"{t_exact / n_spec * 1e3:.3f}",
             f"identical to the loop on {same_ref:.2%} of {len(ref_idx)} px", "100%"]]
    for m, (res, t) in fast.items():
        agree = np.mean(res.index[:, 0] == exact.index[:, 0])
        rows.append([f"fast mode, M = {m}", f"{t:.1f}", f"{t / n_spec * 1e3:.3f}",
                     f"same proxy as exact: {agree:.2%}", f"{t_exact / t:.2f}x"])
    table(rows, ["method", f"s (all {n_spec} px)", "ms/px", "check", "speed vs exact"])
    print("exact mode, where the time goes:", phases_line(phases, n_spec), "\n")
    speed = t_ref / t_exact
    m0 = args.prefilter_sweep[0]
    agree0 = np.mean(fast[m0][0].index[:, 0] == exact.index[:, 0])
    best_agree = max((np.mean(r.index[:, 0] == exact.index[:, 0]), m) for m, (r, _) in fast.items())
    ratio_line("median exact vs straightforward loop", f"{speed:.0f}x faster", ">= 20x",
               speed >= 20 and same_ref == 1.0, f"identical on {same_ref:.2%} of checked pixels")
    ratio_line(f"median fast (M={m0}) agreement with exact", f"{agree0:.2%}", ">= 99%",
               agree0 >= 0.99, f"best over the sweep: {best_agree[0]:.2%} at M = {best_agree[1]}")
    ratio_line(f"median fast (M={m0}) speed vs exact", f"{t_exact / fast[m0][1]:.2f}x", ">= 50x",
               t_exact / fast[m0][1] >= 50)
    return dict(median_speedup=speed, fast_agree=agree0)


def stage_run(config, ranks, settings, workdir, label):
    """Run 1_Proxy_Matches.py under mpiexec; return parsed timings and memory."""
    raw = yaml.safe_load(Path(config).read_text())
    base = Path(config).parent
    for key in ("dark_frames", "science_frames", "spectral_mask"):
        raw[key] = str((base / raw[key]).resolve()) if not Path(raw[key]).is_absolute() \
            else raw[key]
    raw.update(settings)
    raw["output_dir"] = str(Path(workdir) / label)
    path = Path(workdir) / f"{label}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    mpiexec = Path(sys.executable).parent / "mpiexec"
    cmd = [str(mpiexec) if mpiexec.exists() else "mpiexec", "-n", str(ranks), sys.executable,
           str(ROOT / "1_Proxy_Matches.py"), "--config", str(path), "--overwrite"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    log = proc.stderr
    done = re.search(r"proxy matching: (\d+) done in ([\d.]+) s", log)
    busy = re.search(r"matching time per rank: ([\d., ]+) s", log)
    peak = re.search(r"peak resident memory per rank: ([\d., ]+) GiB", log)
    progress = len(re.findall(r"proxy matching: +[\d.]+% .*ETA", log))
    return dict(pixels=int(done.group(1)), seconds=float(done.group(2)), wall=wall,
                busy=[float(x) for x in busy.group(1).split(",")],
                peak=[float(x) for x in peak.group(1).split(",")], progress_lines=progress)


def cmd_mpi(args):
    config, spec, cand = dataset(args)
    settings = dict(proxy_method=args.method, median_mode="exact", candidate_chunk=args.chunk,
                    block_size=args.block)
    print(f"## MPI strong scaling: {args.preset}, stage 1 ({args.method}), whole data set\n")
    # Warm the compiled-kernel cache so that no run pays the compilation.
    stage_run(config, 1, dict(settings, blas_threads=1), args.work, "warm")
    runs = {}
    for label, ranks, threads in (("1 rank x 1 thread", 1, 1), ("1 rank x 2 threads", 1, 2),
                                  ("2 ranks x 1 thread", 2, 1)):
        runs[label] = stage_run(config, ranks, dict(settings, blas_threads=threads), args.work,
                                label.replace(" ", ""))
    base = runs["1 rank x 1 thread"]["pixels"] / runs["1 rank x 1 thread"]["seconds"]
    rows = []
    for label, r in runs.items():
        rate = r["pixels"] / r["seconds"]
        rows.append([label, f"{r['seconds']:.1f}", f"{rate:.0f}", f"{rate / base:.2f}",
                     " / ".join(f"{b:.1f}" for b in r["busy"]),
                     f"{min(r['busy']) / max(r['busy']):.2f}"])
    table(rows, ["configuration", "matching s", "pixels/s", "vs 1x1", "busy s per rank",
                 "balance (min/max)"])
    two = runs["2 ranks x 1 thread"]
    speed = (two["pixels"] / two["seconds"]) / base
    speed_t = (two["pixels"] / two["seconds"]) / (runs["1 rank x 2 threads"]["pixels"]
                                                  / runs["1 rank x 2 threads"]["seconds"])
    ratio_line("2 ranks vs 1 rank (1 thread each)", f"{speed:.2f}x", ">= 1.7x", speed >= 1.7,
               f"vs 1 rank with 2 BLAS threads: {speed_t:.2f}x; "
               f"balance {min(two['busy']) / max(two['busy']):.2f}")
    return dict(mpi_speedup=speed)


def cmd_memory(args):
    config, spec, cand = dataset(args)
    print(f"## Memory: {args.preset} ({len(spec)} spectral x {len(cand)} candidates x "
          f"{spec.shape[1]} darks), the real stage under mpiexec -n {args.ranks}\n")
    rows, worst = [], 0.0
    for method in args.methods:
        settings = dict(proxy_method=method, median_mode="exact", candidate_chunk=args.chunk,
                        block_size=args.block)
        r = stage_run(config, args.ranks, settings, args.work, f"mem-{method}")
        worst = max(worst, max(r["peak"]))
        rows.append([method + (" (exact)" if method == "median" else ""),
                     f"{r['seconds']:.1f}", f"{r['wall']:.1f}",
                     " / ".join(f"{p:.2f}" for p in r["peak"]), r["progress_lines"]])
    table(rows, ["method", "matching s", "whole stage s", "peak GiB per rank",
                 "progress lines"])
    model = (len(cand) * (spec.shape[1] + 12) * 4 + args.block * args.chunk * 4 * 2) / 2 ** 30
    print(f"matching memory model per rank: candidates ~{len(cand) * (spec.shape[1] + 12) * 4 / 2**30:.2f}"
          f" GiB + block buffers {args.block * args.chunk * 8 / 2**30:.3f} GiB = {model:.2f} GiB; "
          "rank 0 also reads the darks (frame-sized arrays) before matching\n")
    ratio_line("peak resident memory per rank", f"{worst:.2f} GiB", "<= 2 GiB", worst <= 2.0)
    return dict(peak=worst)


def cmd_scaling(args):
    config, spec, cand = dataset(args)
    rng = np.random.default_rng(0)
    print(f"## Scaling ({args.preset}, 1 thread): time per spectral pixel vs size\n")
    rows = []
    n_s = args.pixels
    base_sub = subset(spec, n_s)
    configs = []
    for n in (n_s // 4, n_s // 2, n_s):
        configs.append(("spectral pixels", n, base_sub[:n], cand))
    for frac in (0.125, 0.25, 0.5):
        keep = np.sort(rng.choice(len(cand), int(len(cand) * frac), replace=False))
        configs.append(("candidates", len(keep), base_sub, cand[keep]))
    for d in (spec.shape[1] // 4, spec.shape[1] // 2):
        configs.append(("darks", d, base_sub[:, :d], cand[:, :d]))
    fits = {"lsq": [], "median": []}
    with threadpool_limits(1), matching.kernel_threads(1):
        for what, value, s, c in configs:
            cs = CandidateSet(np.ascontiguousarray(c), args.chunk)
            times = []
            for method in ("lsq", "median"):
                match_block(s[:16], cs, method=method, median_mode="exact")
                _, t = run_blocks(np.ascontiguousarray(s), cs, args.block, method=method,
                                  median_mode="exact")
                times.append(t)
                fits[method].append((len(s), len(c), s.shape[1], t))
            rows.append([what, value, len(s), len(c), s.shape[1],
                         f"{times[0] / len(s) * 1e3:.3f}", f"{times[1] / len(s) * 1e3:.3f}",
                         f"{times[0] / (len(s) * len(c)) * 1e9:.2f}",
                         f"{times[1] / (len(s) * len(c)) * 1e9:.2f}"])
    table(rows, ["varied", "value", "N_spectral", "N_candidates", "N_darks", "LSQ ms/px",
                 "median ms/px", "LSQ ns/pair", "median ns/pair"])
    print("cost model, least squares over the runs above (per core): seconds = "
          "N_spectral x (c + N_candidates x (a + b x N_darks))")
    for method, data in fits.items():
        data = np.array(data, float)
        pairs = data[:, 0] * data[:, 1]
        design = np.c_[data[:, 0], pairs, pairs * data[:, 2]]
        (c, a, b), *_ = np.linalg.lstsq(design, data[:, 3], rcond=None)
        full = len(spec) * (c + len(cand) * (a + b * spec.shape[1]))
        worst = np.max(np.abs(design @ (c, a, b) / data[:, 3] - 1))
        print(f"  {method:6s}: c = {c * 1e6:.0f} us, a = {a * 1e9:.3f} ns, b = {b * 1e9:.4f} ns "
              f"(fits every run within {worst:.0%}) -> whole {args.preset} frame ({len(spec)} x "
              f"{len(cand)} x {spec.shape[1]}): {full:.0f} core-seconds")
    print()
    return {}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["lsq", "median", "mpi", "memory", "scaling", "all"])
    parser.add_argument("--preset", default=None, help="simulator preset (default per command)")
    parser.add_argument("--data", default="/tmp/ppp-bench", help="where simulated data go")
    parser.add_argument("--work", default="/tmp/ppp-bench/runs", help="stage outputs (mpi, memory)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads for lsq, on both sides of the ratio (default 1: per "
                             "core, as each rank runs under mpiexec -n <cores>)")
    parser.add_argument("--pixels", type=int, default=4096,
                        help="spectral pixels timed by lsq / scaling (extrapolated)")
    parser.add_argument("--check", type=int, default=32, help="pixels checked by brute force (lsq)")
    parser.add_argument("--reference-pixels", type=int, default=64,
                        help="pixels run through the straightforward loop (median)")
    parser.add_argument("--prefilter", type=int, default=DEFAULTS["prefilter_count"])
    parser.add_argument("--prefilter-sweep", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--block", type=int, default=DEFAULTS["block_size"])
    parser.add_argument("--chunk", type=int, default=DEFAULTS["candidate_chunk"])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--method", default="median", choices=["median", "lsq"])
    parser.add_argument("--methods", nargs="+", default=["lsq", "median"])
    args = parser.parse_args(argv)
    print(f"machine: {machine()}\n")
    default_preset = {"lsq": "cute", "median": "demo", "mpi": "demo", "memory": "cute",
                      "scaling": "cute"}
    commands = ["lsq", "median", "mpi", "memory", "scaling"] if args.command == "all" \
        else [args.command]
    for name in commands:
        preset = args.preset
        args.preset = preset or default_preset[name]
        globals()[f"cmd_{name}"](args)
        args.preset = preset
    return 0


if __name__ == "__main__":
    sys.exit(main())
