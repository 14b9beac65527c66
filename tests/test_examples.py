"""The Slurm example and the Makefile are valid and run the registry's stages in order."""

import re
import subprocess
import sys

from conftest import ROOT
from proxy_pixel_pipeline.runtime import registry

SLURM = ROOT / "examples" / "slurm_pipeline.sh"
STAGE_STEMS = [s.script.removesuffix(".py") for s in registry.STAGES]


def stages_in(text):
    return re.findall(r"\b(\d_[A-Za-z_]+)(?:\.py)?\b", text)


def fake_python(tmp_path):
    """A PYTHON that runs ``-m`` modules for real (the stage list) and echoes the rest."""
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/bash\nif [[ "$1" == -m ]]; then exec {sys.executable} "$@"; fi\n'
                    'echo "$@"\n')
    fake.chmod(0o755)
    return str(fake)


def test_slurm_script_is_valid_shell():
    subprocess.run(["bash", "-n", str(SLURM)], check=True)


def test_slurm_script_runs_the_readme_stages_in_order(tmp_path):
    readme = (ROOT / "README.md").read_text()
    by_hand = readme.split("## Running the stages by hand")[1].split("```")[1]
    assert stages_in(by_hand) == STAGE_STEMS
    # The Slurm script and the Makefile take the list from the registry, not a copy of it.
    assert "-m proxy_pixel_pipeline.runtime.registry" in SLURM.read_text()
    assert "-m proxy_pixel_pipeline.runtime.registry" in (ROOT / "Makefile").read_text()
    # Both pass the config the same way.
    assert '--config "$CONFIG"' in SLURM.read_text() and "--config data/mine/config.yaml" in by_hand


def test_slurm_script_runs_with_a_fake_launcher(tmp_path):
    """Dry run: LAUNCH=echo prints the stage commands and the figures step."""
    env = {"PATH": "/usr/bin:/bin", "LAUNCH": "echo", "PYTHON": fake_python(tmp_path)}
    out = subprocess.run(["bash", str(SLURM), "my.yaml"], env=env, capture_output=True, text=True,
                         check=True).stdout
    calls = [line for line in out.splitlines() if not line.startswith("===")]
    n = len(STAGE_STEMS)
    assert [stages_in(c)[0] for c in calls[:n]] == STAGE_STEMS
    assert all("--config my.yaml" in c for c in calls[:n])
    assert "make_figures.py" in calls[-1]


def test_slurm_script_finds_the_pipeline_from_the_spool_copy(tmp_path):
    """sbatch runs a copy from its spool folder: the pipeline is found via SLURM_SUBMIT_DIR."""
    spool = tmp_path / "spool" / "slurm_script"
    spool.parent.mkdir()
    spool.write_text(SLURM.read_text())
    env = {"PATH": "/usr/bin:/bin", "LAUNCH": "echo", "PYTHON": fake_python(tmp_path)}
    out = subprocess.run(["bash", str(spool), "my.yaml"], env=env | {"SLURM_SUBMIT_DIR": str(ROOT)},
                         capture_output=True, text=True, check=True).stdout
    assert f"{ROOT}/{registry.stage(1).script}" in out
    lost = subprocess.run(["bash", str(spool), "my.yaml"], env=env, capture_output=True, text=True)
    assert lost.returncode != 0 and "set PIPELINE_DIR" in lost.stderr
