"""The kernels' public interface: numpy and numba implementations give the same results.

The main test hides numba for real (``sys.modules['numba'] = None`` in a
subprocess, so ``import numba`` fails as on a machine without it) and checks
that stage 1 still runs and writes the same match tables as with numba.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from proxy_pixel_pipeline.science.matching import kernels as match_kernels

ROOT = Path(__file__).resolve().parents[1]
HAVE_NUMBA = importlib.util.find_spec("numba") is not None

# Runs stage 1 on each config given; "hide" first makes numba unimportable.
DRIVER = r"""
import sys
hide = sys.argv[1] == "hide"
if hide:
    sys.modules["numba"] = None              # `import numba` raises ImportError from now on
import runpy
from proxy_pixel_pipeline.science.matching import kernels as match_kernels
expected = "numpy" if hide else "numba"
if match_kernels.BACKEND != expected:
    sys.exit(f"kernels: {match_kernels.backend_info()}, expected {expected}")
if hide and sys.modules.get("numba") is not None:
    sys.exit("numba was imported although hidden")
for config in sys.argv[2:]:                  # the script itself, as users run it
    sys.argv = ["1_Proxy_Matches.py", "--config", config]
    try:
        runpy.run_path("1_Proxy_Matches.py", run_name="__main__")
    except SystemExit as exc:
        if exc.code:
            sys.exit(f"stage 1 failed on {config}")
"""

SETTINGS = [dict(proxy_method="median", median_mode="exact", proxy_count=1),
            dict(proxy_method="median", median_mode="exact", proxy_count=4),
            dict(proxy_method="lsq", proxy_count=1),
            dict(proxy_method="lsq", proxy_count=4)]


def _environment():
    env = {k: v for k, v in os.environ.items() if k != "PPP_KERNELS"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _tables(path):
    """Every data array of a FITS file (table columns by name), headers aside."""
    out = {}
    with fits.open(path) as hdul:
        for n, hdu in enumerate(hdul):
            if hdu.data is None:
                continue
            if isinstance(hdu, fits.BinTableHDU):
                for name in hdu.columns.names:
                    out[f"{n}:{name}"] = np.array(hdu.data[name])
            else:
                out[f"{n}"] = np.array(hdu.data)
    return out


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed: nothing to compare with")
def test_stage1_without_numba_writes_identical_match_tables(tmp_path):
    from proxy_pixel_pipeline.simulate import simulate

    # ~570 spectral x 700 candidates x 30 darks, integer ADU, missing packets.
    folder = simulate(tmp_path / "data", preset="tiny", seed=3, n_columns=32, n_science=2)
    base = yaml.safe_load((folder / "config.yaml").read_text())
    configs = {"numba": [], "hide": []}
    for n, settings in enumerate(SETTINGS):
        for backend, paths in configs.items():
            # Small blocks and chunks: several of each, and partial-candidate chunks.
            raw = dict(base, **settings, block_size=300, candidate_chunk=400,
                       output_dir=f"out_{n}_{backend}")
            path = folder / f"config_{n}_{backend}.yaml"
            path.write_text(yaml.safe_dump(raw))
            paths.append(path)
    procs = {backend: subprocess.Popen([sys.executable, "-c", DRIVER, backend, *map(str, paths)],
                                       cwd=ROOT, env=_environment(), stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
             for backend, paths in configs.items()}
    for backend, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{backend}:\n{out}\n{err[-3000:]}"
    for n, settings in enumerate(SETTINGS):
        with_numba = _tables(folder / f"out_{n}_numba" / "proxy_matches.fits")
        without = _tables(folder / f"out_{n}_hide" / "proxy_matches.fits")
        assert with_numba.keys() == without.keys() and with_numba, settings
        assert any("PROXY" in name for name in with_numba), list(with_numba)
        for name, values in with_numba.items():
            assert values.dtype == without[name].dtype, (settings, name)
            np.testing.assert_array_equal(without[name], values, err_msg=f"{settings} {name}")


def _integer_block(seed=5, n_s=40, n_c=1500, n_d=25):
    """Integer dark series with missing samples (residual medians tie at 0)."""
    rng = np.random.default_rng(seed)
    level = rng.normal(0, 20, n_c)
    cand = np.round(level[:, None] + rng.normal(0, 3, (n_c, n_d)))
    spec = np.round(level[rng.choice(n_c, n_s), None] + rng.normal(0, 3, (n_s, n_d)))
    cand[rng.random(cand.shape) < 0.02] = np.nan
    spec[rng.random(spec.shape) < 0.02] = np.nan
    return spec.astype(np.float32), cand.astype(np.float32)


@pytest.mark.skipif(not HAVE_NUMBA or match_kernels.BACKEND != "numba",
                    reason="numba kernels not in use")
def test_kernels_of_both_implementations_agree():
    spec, cand = _integer_block()
    numpy_k, numba_k = match_kernels.implementation("numpy"), match_kernels.implementation("numba")
    pi = np.repeat(np.arange(len(spec)), 7)
    pj = np.tile(np.arange(7) * 11, len(spec))
    for with_median in (True, False):
        for a, b in zip(numpy_k.pair_stats(spec, cand, pi, pj, with_median, 1000),
                        numba_k.pair_stats(spec, cand, pi, pj, with_median)):
            np.testing.assert_array_equal(a, b)

    # LSQ scan: the same M best per row (numpy keeps rows sorted, numba as heaps).
    s0, c0 = np.nan_to_num(spec), np.nan_to_num(cand)
    g = np.ascontiguousarray((-2 * s0) @ c0.T, dtype=np.float32)
    sq_s = np.einsum("ij,ij->i", s0.astype(np.float64), s0)
    sq_c = np.einsum("ij,ij->i", c0.astype(np.float64), c0)
    terms = match_kernels.LsqTerms(sq_s, np.full(len(spec), 1 / spec.shape[1]), sq_c,
                                   sq_c.astype(np.float32), np.arange(len(cand), dtype=np.int64))
    rows = np.arange(len(spec), dtype=np.int64)
    best = []
    for kernels in (numpy_k, numba_k):
        top = match_kernels.TopM.empty(len(spec), 5)
        for start in range(0, len(cand), 512):               # chunk by chunk, as matching does
            sl = slice(start, start + 512)
            kernels.lsq_scan(np.ascontiguousarray(g[:, sl]), rows,
                             terms._replace(col_sq=sq_c[sl], col_sq32=terms.col_sq32[sl],
                                            col_index=terms.col_index[sl]), top)
        order = np.lexsort((top.index, top.score), axis=1)      # each row by (score, index)
        best.append([np.take_along_axis(x, order, 1) for x in top])
    for a, b in zip(*best):
        np.testing.assert_array_equal(a, b)


def test_kernel_choice_is_forced_by_the_environment():
    code = ("import sys; from proxy_pixel_pipeline.science.matching import kernels as k; "
            "print(k.BACKEND, 'numba' in sys.modules)")
    env = dict(_environment(), PPP_KERNELS="numpy")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["numpy", "False"]
    env["PPP_KERNELS"] = "fortran"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "PPP_KERNELS" in proc.stderr
    with pytest.raises(ValueError, match="numpy"):
        match_kernels.implementation("fortran")
