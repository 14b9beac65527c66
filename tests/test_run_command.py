"""``ppp run`` and ``ppp status`` (``python -m proxy_pixel_pipeline``), and the stage run logs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from astropy.io import fits

from conftest import ROOT, mpiexec, run_script, write_config
from proxy_pixel_pipeline.io.provenance import run_id
from proxy_pixel_pipeline.runtime import registry
from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.simulate import simulate

N_STAGES = len(registry.STAGES)


def ppp(*args, ranks=None, check=True):
    """``python -m proxy_pixel_pipeline ARGS`` (under ``mpiexec -n ranks`` if given)."""
    cmd = [sys.executable, "-m", "proxy_pixel_pipeline", *map(str, args)]
    if ranks:
        cmd = [mpiexec(), "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def products(config):
    """Every product file of every stage, by path relative to output_dir."""
    cfg = load_config(config)
    layout = Layout(cfg.output_dir)
    science = cfg.science_paths()
    files = {}
    for spec in registry.STAGES:
        for out in spec.products:
            where = getattr(layout, out.name)
            for path in ([where(p) for p in science] if out.per_frame else [where]):
                files[path.relative_to(layout.root).as_posix()] = path
    return files


def status_lines(proc):
    return {int(line.split()[1]): line for line in proc.stdout.splitlines()
            if line.strip().startswith("stage ")}


@pytest.fixture(scope="module")
def visits(tmp_path_factory):
    """The same tiny visit twice: one run by the scripts one by one, one by ``ppp run`` on two
    ranks."""
    base = tmp_path_factory.mktemp("run")
    folder = simulate(base / "scripts" / "visit", preset="tiny", seed=23,  # the folder names
                      n_science=12)
    config = folder / "config.yaml"                                       # the visit
    config.write_text(config.read_text() + "fit_sampler: lsq\n")
    shutil.copytree(folder, base / "run" / "visit", symlinks=True)
    for spec in registry.STAGES:
        run_script(spec.script, "--config", config)
    proc = ppp("run", base / "run" / "visit" / "config.yaml", ranks=2)
    return config, base / "run" / "visit" / "config.yaml", proc


def test_run_makes_the_products_of_the_scripts_one_by_one(visits):
    by_scripts, by_run, proc = visits
    assert proc.stderr.count("running it") == N_STAGES
    a, b = products(by_scripts), products(by_run)
    assert sorted(a) == sorted(b) and len(a) > N_STAGES
    for name in a:
        with fits.open(a[name]) as one, fits.open(b[name]) as two:
            assert [h.name for h in one] == [h.name for h in two], name
            for h1, h2 in zip(one, two):
                if h1.data is None:
                    assert h2.data is None, name
                elif isinstance(h1, fits.BinTableHDU):
                    assert h1.columns.names == h2.columns.names, name
                    for col in h1.columns.names:
                        np.testing.assert_array_equal(h1.data[col], h2.data[col],
                                                      err_msg=f"{name}[{h1.name}].{col}")
                else:
                    np.testing.assert_array_equal(h1.data, h2.data, err_msg=f"{name}[{h1.name}]")


def test_every_stage_run_leaves_a_run_log_of_its_products(visits):
    by_scripts, by_run, _ = visits
    for config, ranks in ((by_scripts, 1), (by_run, 2)):
        layout = Layout(load_config(config).output_dir)
        for spec in registry.STAGES:
            log = json.loads((layout.runlog / f"stage{spec.number}.json").read_text())
            assert log["stage"] == spec.number and log["n_ranks"] == ranks
            assert [r["rank"] for r in log["ranks"]] == list(range(ranks))
            assert all(r["wall_s"] > 0 and r["peak_gib"] > 0.01 for r in log["ranks"])
            first = getattr(layout, spec.products[0].name)
            if spec.products[0].per_frame:
                first = first(load_config(config).science_paths()[0])
            assert log["runid"] == run_id(first)
        assert "run" in log["command"] if ranks == 2 else spec.script in log["command"]


def test_a_second_run_skips_every_current_stage_and_status_says_current(visits):
    _, config, _ = visits
    before = {name: p.stat().st_mtime_ns for name, p in products(config).items()}
    proc = ppp("run", config)
    assert proc.stderr.count("current, skipped") == N_STAGES
    assert {name: p.stat().st_mtime_ns for name, p in products(config).items()} == before
    status = ppp("status", config)
    lines = status_lines(status)
    assert sorted(lines) == [s.number for s in registry.STAGES]
    assert all(line.split()[3] == "current" for line in lines.values()), status.stdout


def test_status_names_the_stale_stages_and_the_setting_and_run_reruns_them(visits, tmp_path):
    _, config, _ = visits
    copy = tmp_path / "visit"
    shutil.copytree(config.parent, copy, symlinks=True)
    config = copy / "config.yaml"
    # bin_width is the setting of stage 4 (the final-frame fits; stage 3 fits with it too).
    config.write_text(config.read_text() + "bin_width: 16\n")
    status = ppp("status", config, check=False)
    assert status.returncode == 1
    lines = status_lines(status)
    for number in (1, 2):
        assert lines[number].split()[3] == "current", lines[number]
    for number in range(3, N_STAGES + 1):
        assert lines[number].split()[3] == "stale:", lines[number]
        assert "bin_width: 25 in the file, 16 in config.yaml" in lines[number]
    assert "not current: stages 3, 4, 5, 6, 7" in status.stdout

    # From stage 4 on, stage 3's products are stale: stage 4 refuses them, naming them.
    proc = ppp("run", config, "--from", "4", check=False)
    assert proc.returncode == 1
    assert "error: stage 4: " in proc.stderr and "median_fits.fits" in proc.stderr
    assert "rerun 3_Median_Fits.py" in proc.stderr

    proc = ppp("run", config)
    assert proc.stderr.count("current, skipped") == 2
    assert proc.stderr.count("stale (") == N_STAGES - 2 and "bin_width" in proc.stderr
    assert ppp("status", config).returncode == 0


def test_run_stopped_by_a_time_limit_resumes_with_the_same_command(visits, tmp_path):
    """SIGTERM (a batch time limit) in stage 5: status says interrupted, the same command
    resumes from the frames done and ends with the products of an uninterrupted run."""
    by_scripts, config, _ = visits
    copy = tmp_path / "visit"
    shutil.copytree(config.parent, copy, symlinks=True)
    config = copy / "config.yaml"
    layout = Layout(load_config(config).output_dir)
    shutil.rmtree(layout.root / "final")
    cmd = [sys.executable, "-m", "proxy_pixel_pipeline", "run", str(config)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    staged = layout.root / ".staging" / "stage5"
    while proc.poll() is None and len(list(staged.rglob("science_*.fits"))) < 4:
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate()
    assert proc.returncode == 1, "stage 5 finished before it could be stopped"
    assert "error: stage 5: terminated by signal" in err and "run the same command again" in err
    assert not (layout.root / ".lock").exists()
    lines = status_lines(ppp("status", config, check=False))
    assert lines[5].split()[3] == "interrupted:", lines[5]

    again = ppp("run", config)
    assert again.stderr.count("current, skipped") == 4
    assert "stage 5 (infill and cosmic-ray removal): interrupted" in again.stderr
    assert "resuming:" in again.stderr
    assert ppp("status", config).returncode == 0
    expected = products(by_scripts)
    for name, path in products(config).items():
        if name.startswith("final/"):
            with fits.open(expected[name]) as one, fits.open(path) as two:
                for h1, h2 in zip(one, two):
                    np.testing.assert_array_equal(h1.data, h2.data, err_msg=name)


def test_status_says_interrupted_and_missing(visits, tmp_path):
    _, config, _ = visits
    copy = tmp_path / "visit"
    shutil.copytree(config.parent, copy, symlinks=True)
    config = copy / "config.yaml"
    layout = Layout(load_config(config).output_dir)
    (layout.root / ".staging" / "stage5").mkdir(parents=True)
    first = sorted(layout.spectra(p) for p in load_config(config).science_paths())[0]
    first.unlink()
    lines = status_lines(ppp("status", config, check=False))
    assert "interrupted: an unfinished run left .staging/stage5/" in lines[5]
    assert "missing: 1 of" in lines[6] and f"spectra/{first.name}" in lines[6]
    assert lines[7].split()[3] == "current"      # stage 7 reads the light curves only


def test_bad_input_is_one_line(tmp_path):
    proc = ppp("status", tmp_path / "nowhere.yaml", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: status: config file not found")
    proc = ppp("run", tmp_path / "nowhere.yaml", check=False)
    assert proc.returncode == 1 and "error: run: config file not found" in proc.stderr
    proc = ppp("run", write_config(tmp_path), "--from", "5", "--to", "3", check=False)
    assert proc.returncode == 1 and "--from 5 is after --to 3" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_log_gathers_every_ranks_warnings(tmp_path):
    """A stage whose every rank logs a warning: rank 0 writes both, with each rank's numbers."""
    script = tmp_path / "warning_stage.py"
    script.write_text(textwrap.dedent("""
        import sys
        from proxy_pixel_pipeline.runtime.cli import stage_main
        from proxy_pixel_pipeline.runtime.logs import get_logger

        def run(cfg, comm, overwrite=False):
            get_logger().warning("odd frame on rank %d", comm.rank)
            comm.Barrier()

        sys.exit(stage_main(3, "test", run))
    """))
    config = write_config(tmp_path)
    subprocess.run([mpiexec(), "-n", "2", sys.executable, str(script), "--config", str(config)],
                   check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    log = json.loads((tmp_path / "output" / ".runlog" / "stage3.json").read_text())
    assert log["n_warnings"] == 2 and log["n_ranks"] == 2 and log["runid"] is None
    assert [(r["rank"], [w["message"] for w in r["warnings"]]) for r in log["ranks"]] == [
        (0, ["odd frame on rank 0"]), (1, ["odd frame on rank 1"])]
    assert log["ranks"][1]["pid"] != log["ranks"][0]["pid"]
