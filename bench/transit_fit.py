#!/usr/bin/env python
"""Stage 7 on simulated CUTE visits: its cost and its science against the issue's targets.

Simulates ``--visits`` visits of a preset (``wasp189b``, or ``kelt9b`` and other seeds for data
nobody tuned to), runs stages 1-6 on each under ``mpiexec -n --ranks`` (kept in ``--data`` and
reused when present), then stage 7 three ways: every visit alone, all jointly (the config's
``joint_visits``), and jointly again for the timing.  The channels are ``--channels`` bands
across the trace plus a 13 A Mg II band (2793.5-2806.5 A) given as ``channel_wavelengths``.
Prints a Markdown table and ``RATIO ...: measured (target ...) -> MET / NOT MET`` lines:

- stage 7's wall time for the joint fit (white + channels, with sampling): target < 120 s;
- the joint white Rp/R* within 3 sigma of the truth, its error <= 1.5x the oracle's;
- channel pulls over >= 8 channels: spread 0.5-1.6, mean within +-1.2;
- the Mg II band above the white light by >= 3 sigma (when injected);
- the joint error <= 0.8x one visit's (the mean of the single visits' errors).

Usage::

    python bench/transit_fit.py --preset wasp189b --seed 5 --visits 3
    python bench/transit_fit.py --preset kelt9b --seed 11 --visits 3     # held out
    python bench/transit_fit.py --preset kelt9b --seed 29 --data /tmp/ppp-bench/k29 \
        --sim scatter_gradient=0.5 jitter_median=3.0 ramp_tau=1500.0 drift_order=2
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from proxy_pixel_pipeline.io.transit_products import read_depths  # noqa: E402
from proxy_pixel_pipeline.runtime.config import load_config  # noqa: E402
from proxy_pixel_pipeline.runtime.layout import Layout  # noqa: E402
from proxy_pixel_pipeline.score import score_run  # noqa: E402
from proxy_pixel_pipeline.simulate import parse_overrides, simulate  # noqa: E402

MG_II = (2793.5, 2806.5)


def _mpiexec():
    local = Path(sys.executable).with_name("mpiexec")
    return str(local) if local.exists() else "mpiexec"


def _run(script, config, ranks, overwrite=False):
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, str(ROOT / script), "--config",
           str(config)] + (["--overwrite"] if overwrite else [])
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{script} failed on {config}:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stderr


def _run_pipeline(config, ranks, last=6):
    """``ppp run --to last``: every stage not current, in order; the wall time."""
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, "-m", "proxy_pixel_pipeline", "run",
           str(config), "--to", str(last)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"ppp run failed on {config}:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def _bands(cfg, n):
    """``n`` equal bands across the trace's wavelengths, and the Mg II band."""
    lo, hi = 2520.0, 3280.0
    if cfg.wavelength_solution is not None:
        a, b = cfg.wavelength_solution[:2]
        lo, hi = max(lo, a + 60 * b), min(hi, a + 1990 * b)
    edges = np.linspace(lo, hi, n + 1)
    return [[float(a), float(b)] for a, b in zip(edges[:-1], edges[1:])] + [list(MG_II)]


#: Marks the config lines ``--extra`` added, so that the next run takes them out again.
_EXTRA_MARK = "  # bench --extra"


def _configure(config, bands, joint=(), extra=""):
    """Set the bands, the joint visits and ``extra`` lines in a visit's config (an earlier
    run's ``--extra`` lines are taken out first)."""
    extra = "".join(line.strip() + _EXTRA_MARK + "\n" for line in extra.splitlines()
                    if line.strip())
    text = "".join(line for line in config.read_text().splitlines(keepends=True)
                   if not line.rstrip("\n").endswith(_EXTRA_MARK))
    text = re.sub(r"(?m)^(channel_wavelengths|joint_visits):.*\n(\s+#.*\n)*", "", text)
    text += f"channel_wavelengths: {bands}\n"
    if joint:
        text += "joint_visits: [" + ", ".join(f"../{j}/config.yaml" for j in joint) + "]\n"
    config.write_text(text + extra)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="wasp189b")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--visits", type=int, default=3)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of the visits (default /tmp/ppp-bench/<preset>-<seed>)")
    parser.add_argument("--extra", default="", help="more config lines for stage 7, e.g. "
                        "'channel_common_mode: none'")
    parser.add_argument("--sim", nargs="*", default=[], metavar="KEY=VALUE",
                        help="simulator overrides for data nobody tuned to, e.g. "
                             "scatter_gradient=0.5 jitter_median=6.0 (Python literals, else text)")
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.sim)
    data = args.data or Path("/tmp/ppp-bench") / f"{args.preset}-{args.seed}"
    names = [f"visit{k + 1}" for k in range(args.visits)]
    configs = [data / n / "config.yaml" for n in names]
    if not all(c.is_file() for c in configs):
        simulate(data, preset=args.preset, seed=args.seed, visits=args.visits, overwrite=True,
                 **overrides)
    stage6 = {}
    for config in configs:         # stages 1-6, skipping those still current (ppp run)
        bands = _bands(load_config(config), args.channels)
        _configure(config, bands)
        stage6[config.parent.name] = _run_pipeline(config, args.ranks)
    single = []
    for config in configs:
        _configure(config, bands, extra=args.extra)
        _run("7_Transit_Fit.py", config, args.ranks, True)
        d = read_depths(Layout(load_config(config).output_dir).transit_depths)
        single.append(0.5 * (d["RP_RS_ERR_LO"][0] + d["RP_RS_ERR_HI"][0]))
    _configure(configs[0], bands, joint=names[1:], extra=args.extra)
    seconds, _ = _run("7_Transit_Fit.py", configs[0], args.ranks, True)
    scores = score_run(configs[0])["transit_fit"]
    depths = read_depths(Layout(load_config(configs[0]).output_dir).transit_depths)
    white = scores["white"]
    chans = scores["channels"]
    mg = next(i for i, c in enumerate(depths["CHANNEL"]) if str(c).strip() == str(len(bands) - 1))
    excess = depths["RP_RS"][mg] - depths["RP_RS"][0]
    mg_sigma = excess / np.hypot(depths["RP_RS_ERR_LO"][mg], depths["RP_RS_ERR_HI"][0])
    broad = [c for c in chans if c["channel"] != str(len(bands) - 1)]
    pulls = np.array([c["pull"] for c in broad if c["pull"] is not None])
    joint_err = 0.5 * (white["err_lo"] + white["err_hi"])
    rows = [("preset, seed, visits", f"{args.preset}, {args.seed}, {args.visits}"
                                     + "".join(f", {k}={v}" for k, v in overrides.items())),
            ("stages 1-6 per visit, those not current [s]",
             ", ".join(f"{v:.0f}" for v in stage6.values())),
            ("stage 7 joint, white + channels [s]", f"{seconds:.1f}"),
            ("white Rp/R* (truth)", f"{white['rp_rs']:.5f} -{white['err_lo']:.5f} "
                                    f"+{white['err_hi']:.5f} ({white['truth']:.5f})"),
            ("white pull", f"{white['pull']:+.2f}"),
            ("white error / oracle's", f"{white['err_over_oracle']:.2f}"),
            ("channel pulls: n, mean, spread", f"{len(pulls)}, {np.mean(pulls):+.2f}, "
                                               f"{1.4826 * np.median(np.abs(pulls - np.median(pulls))):.2f}"),
            ("Mg II band - white [sigma]", f"{mg_sigma:+.1f}"),
            ("single-visit white errors", ", ".join(f"{e:.5f}" for e in single)),
            ("joint error / single's mean", f"{joint_err / np.mean(single):.2f}")]
    print("| quantity | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    spread = 1.4826 * np.median(np.abs(pulls - np.median(pulls)))
    checks = [("stage 7 joint time [s]", seconds, "< 120", seconds < 120),
              ("white pull", white["pull"], "within +-3", abs(white["pull"]) <= 3),
              ("white error / oracle", white["err_over_oracle"], "<= 1.5",
               white["err_over_oracle"] is not None and white["err_over_oracle"] <= 1.5),
              ("channel pull spread", spread, "0.5-1.6", 0.5 <= spread <= 1.6 and len(pulls) >= 8),
              ("channel pull mean", float(np.mean(pulls)), "within +-1.2",
               abs(np.mean(pulls)) <= 1.2),
              ("Mg II above white [sigma]", mg_sigma, ">= 3", mg_sigma >= 3),
              ("joint / single error", joint_err / np.mean(single), "<= 0.8",
               joint_err / np.mean(single) <= 0.8)]
    for name, value, target, ok in checks:
        print(f"RATIO {name}: {value:.3f} (target {target}) -> {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
