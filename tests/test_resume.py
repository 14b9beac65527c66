"""Stage 1 killed with SIGKILL mid-run resumes from its checkpoints to the same table."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import yaml
from astropy.io import fits

from proxy_pixel_pipeline.simulate import simulate

from conftest import ROOT, run_script


def test_kill_and_resume_gives_the_uninterrupted_table(tmp_path):
    folder = simulate(tmp_path / "data", preset="demo", seed=3, n_science=1, n_columns=192)
    settings = yaml.safe_load((folder / "config.yaml").read_text())
    settings.update(proxy_method="lsq", block_size=32)
    configs = {}
    for name in ("straight", "killed"):
        configs[name] = folder / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump({**settings, "output_dir": name}))
    run_script("1_Proxy_Matches.py", "--config", configs["straight"])

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(ROOT / "1_Proxy_Matches.py"), "--config",
                             str(configs["killed"])], env=env, stderr=subprocess.DEVNULL)
    checkpoints = folder / "killed" / ".checkpoints"
    while proc.poll() is None and len(list(checkpoints.rglob("block_*.npz"))) < 5:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "stage 1 finished before it could be killed"
    assert not (folder / "killed" / "proxy_matches.fits").exists()
    n_done = len(list(checkpoints.rglob("block_*.npz")))

    resumed = run_script("1_Proxy_Matches.py", "--config", configs["killed"])
    assert f"resuming: {n_done} of" in resumed.stderr
    assert not checkpoints.exists()                       # cleaned up once complete
    a = fits.getdata(folder / "straight" / "proxy_matches.fits", "MATCHES")
    b = fits.getdata(folder / "killed" / "proxy_matches.fits", "MATCHES")
    for name in a.names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
