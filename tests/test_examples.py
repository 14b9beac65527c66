"""The Slurm example is valid shell and runs what the README runs."""

import re
import subprocess

from conftest import ROOT

SLURM = ROOT / "examples" / "slurm_pipeline.sh"


def stages_in(text):
    return re.findall(r"\b(\d_[A-Za-z_]+)(?:\.py)?\b", text)


def test_slurm_script_is_valid_shell():
    subprocess.run(["bash", "-n", str(SLURM)], check=True)


def test_slurm_script_runs_the_readme_stages_in_order():
    readme = (ROOT / "README.md").read_text()
    by_hand = readme.split("## Running the stages by hand")[1].split("```")[1]
    readme_stages = [s for s in stages_in(by_hand)]
    default = re.search(r'STAGES=\$\{STAGES:-"([^"]+)"\}', SLURM.read_text()).group(1)
    assert default.split() == readme_stages
    assert readme_stages == [p.stem for p in sorted(ROOT.glob("[1-5]_*.py"))]
    # Both pass the config the same way.
    assert '--config "$CONFIG"' in SLURM.read_text() and "--config data/mine/config.yaml" in by_hand


def test_slurm_script_runs_with_a_fake_launcher(tmp_path):
    """Dry run: LAUNCH=echo prints the five stage commands and the figures step."""
    env = {"PATH": "/usr/bin:/bin", "LAUNCH": "echo", "PYTHON": "echo"}
    out = subprocess.run(["bash", str(SLURM), "my.yaml"], env=env, capture_output=True, text=True,
                         check=True).stdout
    calls = [line for line in out.splitlines() if not line.startswith("===")]
    assert [stages_in(c)[0] for c in calls[:5]] == [p.stem for p in sorted(ROOT.glob("[1-5]_*.py"))]
    assert all("--config my.yaml" in c for c in calls[:5])
    assert "make_figures.py" in calls[-1]


def test_slurm_script_finds_the_pipeline_from_the_spool_copy(tmp_path):
    """sbatch runs a copy from its spool folder: the pipeline is found via SLURM_SUBMIT_DIR."""
    spool = tmp_path / "spool" / "slurm_script"
    spool.parent.mkdir()
    spool.write_text(SLURM.read_text())
    env = {"PATH": "/usr/bin:/bin", "LAUNCH": "echo", "PYTHON": "echo"}
    out = subprocess.run(["bash", str(spool), "my.yaml"], env=env | {"SLURM_SUBMIT_DIR": str(ROOT)},
                         capture_output=True, text=True, check=True).stdout
    assert f"{ROOT}/1_Proxy_Matches.py" in out
    lost = subprocess.run(["bash", str(spool), "my.yaml"], env=env, capture_output=True, text=True)
    assert lost.returncode != 0 and "set PIPELINE_DIR" in lost.stderr
