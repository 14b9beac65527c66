"""Faults in stages 2-6: bad inputs stop a stage before it writes, a killed stage resumes.

After a good run, a science frame of the wrong shape or a truncated one is added
to the glob: each stage stops with one line naming it and leaves every earlier
output unchanged, byte for byte.  A stage killed with SIGKILL halfway through
its frames, run again, gives the same products as an uninterrupted run.
"""

import hashlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits

from conftest import ROOT, run_script
from proxy_pixel_pipeline.runtime import registry
from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.simulate import simulate

STAGES = list(registry.STAGES)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A finished run of every stage on 12 small frames."""
    folder = simulate(tmp_path_factory.mktemp("faults") / "data", preset="tiny", seed=7, n_science=12)
    for stage in STAGES:
        run_script(stage.script, "--config", folder / "config.yaml")
    return folder


def copy_run(good_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(good_run, copy, symlinks=True)
    return copy


def fingerprint(folder):
    """Digest of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def add_bad_frame(run, kind):
    science = sorted((run / "science").glob("*.fits"))
    bad = run / "science" / "science_999.fits"
    if kind == "wrong_shape":
        data = fits.getdata(science[0])
        fits.PrimaryHDU(data[:-3]).writeto(bad)
    else:
        raw = science[0].read_bytes()
        bad.write_bytes(raw[:len(raw) // 2])
    return bad


@pytest.mark.parametrize("kind", ["wrong_shape", "truncated"])
@pytest.mark.parametrize("stage", [s.number for s in STAGES[1:]])
def test_bad_frame_added_after_a_good_run_stops_the_stage_before_it_writes(good_run, tmp_path,
                                                                           stage, kind):
    run = copy_run(good_run, tmp_path)
    before = fingerprint(run / "output")
    bad = add_bad_frame(run, kind)
    proc = run_script(registry.stage(stage).script, "--config", run / "config.yaml", "--overwrite",
                      check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and bad.name in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert fingerprint(run / "output") == before


def _kill_when_half_done(cmd, staged_folder, n_files):
    """Start ``cmd`` and SIGKILL it once ``n_files`` staged outputs exist."""
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    while proc.poll() is None and len(list(staged_folder.rglob("science_*.fits"))) < n_files:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.returncode


@pytest.mark.parametrize("stage", [2, 5])
def test_killed_stage_resumes_to_the_products_of_an_uninterrupted_run(good_run, tmp_path, stage):
    run = copy_run(good_run, tmp_path)
    layout = Layout(load_config(run / "config.yaml").output_dir)
    script = registry.stage(stage).script
    outputs = [o.name for o in registry.stage(stage).outputs if o.per_frame]
    science = sorted((run / "science").glob("*.fits"))
    expected = {(o, p.name): [h.data for h in fits.open(getattr(layout, o)(p))]
                for o in outputs for p in science}
    for o in outputs:                    # as if this stage had never run
        shutil.rmtree(layout.root / registry.outputs()[o].path)
    code = _kill_when_half_done([sys.executable, str(ROOT / script), "--config", str(run / "config.yaml")],
                                layout.root / ".staging", n_files=len(outputs) * 4)
    assert code == -signal.SIGKILL, f"{script} finished before it could be killed"
    assert not any((layout.root / registry.outputs()[o].path).exists() for o in outputs)

    proc = run_script(script, "--config", run / "config.yaml")    # the same command again
    assert "resuming:" in proc.stderr and "taking over the lock" in proc.stderr
    assert not (layout.root / ".staging").exists()
    runids = set()
    for (o, name), hdus in expected.items():
        with fits.open(getattr(layout, o)(run / "science" / name)) as got:
            runids.add(got[0].header["RUNID"])
            for a, b in zip(hdus, got):
                np.testing.assert_array_equal(a, b.data, err_msg=f"{o}/{name}")
    assert len(runids) == 1               # one run, though in two goes
    for later in STAGES[stage:]:          # and the later stages accept it
        run_script(later.script, "--config", run / "config.yaml", "--overwrite")


def test_a_swap_killed_half_way_is_completed_by_the_same_command(good_run, tmp_path):
    """Killed while moving its outputs into place: the rerun finishes the move, without
    --overwrite (the outputs already moved are its own)."""
    import os

    from proxy_pixel_pipeline.runtime.staging import StagedOutputs

    run = copy_run(good_run, tmp_path)
    cfg = load_config(run / "config.yaml")
    layout = Layout(cfg.output_dir)
    science = cfg.science_paths()
    inputs = [layout.median_fits, *map(layout.final_no_infill, science)]
    staged = StagedOutputs(cfg, 4, inputs=inputs, science_paths=science)
    shutil.rmtree(layout.root / "final_fits")
    assert not staged.begin(overwrite=False)
    staged.layout.final_fits(science[0]).parent.mkdir(parents=True)
    for p in science:                                   # as if the stage had written them
        shutil.copy(good_run / "output" / "final_fits" / p.name, staged.layout.final_fits(p))
    (staged.root / "COMMITTING").write_text("")
    (layout.root / "final_fits").mkdir()
    for p in science[:5]:                               # killed after five moves
        os.replace(staged.layout.final_fits(p), layout.final_fits(p))
    again = StagedOutputs(cfg, 4, inputs=inputs, science_paths=science)
    assert again.begin(overwrite=False) is True
    assert all(layout.final_fits(p).is_file() for p in science)
    assert not staged.root.exists()


def test_sigterm_releases_the_lock_and_the_rerun_resumes(good_run, tmp_path):
    """A batch time limit sends SIGTERM: the stage stops with a message, frees the folder."""
    run = copy_run(good_run, tmp_path)
    layout = Layout(load_config(run / "config.yaml").output_dir)
    shutil.rmtree(layout.root / "final")
    proc = subprocess.Popen([sys.executable, str(ROOT / "5_Infill.py"), "--config",
                             str(run / "config.yaml")], stderr=subprocess.PIPE, text=True)
    while proc.poll() is None and len(list((layout.root / ".staging").rglob("science_*.fits"))) < 4:
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, "stage 5 finished before it could be stopped"
    assert "terminated by signal" in err and not (layout.root / ".lock").exists()
    again = run_script("5_Infill.py", "--config", run / "config.yaml")
    assert "resuming:" in again.stderr and "taking over" not in again.stderr
