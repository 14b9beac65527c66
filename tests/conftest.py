"""Shared fixtures: small hand-made data sets with known answers."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

ROOT = Path(__file__).resolve().parents[1]

NOISE = 0.5  # ADU, read noise of the twin data set
#: The seed's method, one proxy per pixel (the defaults use 16).
SEED_RULE = {"proxy_count": 1, "proxy_combine": "median", "proxy_offset": False}


def write_image(path, data, header=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data, header=header).writeto(path, overwrite=True)
    return path


def write_config(folder, **settings):
    # No trace spills starlight in these synthetic frames, and the planted twins may lie next
    # to the mask: every non-spectral pixel is a candidate (test_scattered_light tests the margin).
    values = {"dark_frames": "darks/dark_*.fits", "science_frames": "science/science_*.fits",
              "spectral_mask": "mask.fits", "output_dir": "output", "proxy_method": "median",
              "candidate_margin": 0}
    values.update(settings)
    path = Path(folder) / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def make_twin_dataset(folder, n_darks=24, n_science=3, shape=(20, 40), seed=0):
    """Darks where each usable spectral pixel has exactly one planted twin candidate.

    Each pixel's dark value is ``bias + level + slope * T_frame + noise`` with
    levels and slopes spread widely, so only the twin (same level and slope)
    matches within the noise.  Some pixels are hot, some spectral samples are
    missing, one spectral pixel has too few valid darks.

    Returns a dict with the config path and the truth.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    ny, nx = shape
    mask = np.zeros(shape, bool)
    mask[8:12, 5:35] = True                       # 120 spectral pixels
    level = rng.uniform(0, 20000, shape)
    slope = rng.uniform(0, 2000, shape)
    spec = np.argwhere(mask)
    cand = np.argwhere(~mask)
    twin = cand[rng.choice(len(cand), len(spec), replace=False)]
    level[spec[:, 0], spec[:, 1]] = level[twin[:, 0], twin[:, 1]]
    slope[spec[:, 0], spec[:, 1]] = slope[twin[:, 0], twin[:, 1]]
    hot = np.zeros(shape, bool)
    hot[spec[3, 0], spec[3, 1]] = True            # a hot spectral pixel
    hot_cand = np.argwhere(~mask)[[1, 2, 3]]
    hot[hot_cand[:, 0], hot_cand[:, 1]] = True    # hot candidates (not twins of anyone usable)
    temps = rng.normal(0, 1, n_darks + n_science)
    frames = (1000 + level + slope * temps[:, None, None]
              + rng.normal(0, NOISE, (len(temps),) + shape)).astype(np.float32)
    frames[:, hot] += 1e6
    darks = frames[:n_darks]
    # Missing samples: scattered, plus one spectral pixel left with too few.
    darks[rng.random(darks.shape) < 0.02] = np.nan
    few = tuple(spec[7])
    darks[3:, few[0], few[1]] = np.nan
    for i, image in enumerate(darks):
        write_image(folder / "darks" / f"dark_{i:03d}.fits", image)
    science = frames[n_darks:]
    science[:, mask] += 500.0                    # the "signal"
    for i, image in enumerate(science):
        write_image(folder / "science" / f"science_{i:03d}.fits", image, fits.Header({"EXPTIME": 300.0}))
    write_image(folder / "mask.fits", mask.astype(np.uint8))
    # One proxy per pixel, as the seed: each pixel has exactly one planted twin.
    config = write_config(folder, **SEED_RULE)
    twin_of = {tuple(s): tuple(t) for s, t in zip(spec, twin)}
    # A twin that is itself hot cannot be matched: exclude from truth.
    excluded = {tuple(spec[3]), few} | {tuple(s) for s, t in zip(spec, twin) if hot[tuple(t)]}
    return {"config": config, "folder": folder, "mask": mask, "twin_of": twin_of, "settings": SEED_RULE,
            "excluded": excluded, "hot": hot, "few": few, "science": science}


@pytest.fixture
def twin_dataset(tmp_path):
    return make_twin_dataset(tmp_path)


def run_script(script, *args, ranks=None, check=True, cwd=None):
    """Run a top-level script (optionally under mpiexec) and return the CompletedProcess."""
    cmd = [sys.executable, str(ROOT / script), *map(str, args)]
    if ranks:
        cmd = [mpiexec(), "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or ROOT, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def stage2_variant(folder, name, extra="", ranks=None):
    """Stage 2 again on a simulated ``folder`` whose stage 1 has run (``output/``), into
    ``output_<name>/`` with ``extra`` config lines and the same matches; its config."""
    from proxy_pixel_pipeline.runtime.config import load_config

    variant = folder / f"config_{name}.yaml"
    variant.write_text((folder / "config.yaml").read_text().replace(
        "output_dir: output", f"output_dir: output_{name}") + extra)
    (folder / f"output_{name}").mkdir()
    (folder / f"output_{name}" / "proxy_matches.fits").symlink_to(
        folder / "output" / "proxy_matches.fits")
    run_script("2_Frames.py", "--config", variant, ranks=ranks)
    return load_config(variant)


def mpiexec():
    """The mpiexec beside this Python (the mpich wheel), else the one on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if not found:
        pytest.skip("no mpiexec available")
    return found
