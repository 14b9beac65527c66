"""score: comparing a run with the simulator's truth goes the right way."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from proxy_pixel_pipeline.runtime import registry
from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.errors import PipelineError
from proxy_pixel_pipeline.io.products import FinalFrame
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.score import format_table, score_run, write_score
from proxy_pixel_pipeline.simulate import simulate

from conftest import run_script

STAGES = tuple(s.script for s in registry.STAGES)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny simulated data set with every stage run (shared, read-only)."""
    folder = simulate(tmp_path_factory.mktemp("tiny") / "data", preset="tiny", seed=1)
    config = folder / "config.yaml"
    for script in STAGES:
        run_script(script, "--config", config, "--overwrite")
    return folder


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of the tiny run that a test may alter."""
    folder = tmp_path / "data"
    shutil.copytree(tiny_run, folder)
    return folder


def truth_frame(folder, name):
    with fits.open(folder / "truth" / name) as hdul:
        return {h.name: h.data.copy() for h in hdul[1:]}


def write_perfect_outputs(folder):
    """Stage 2 and 5 outputs equal to the true signal; COSMIC = truth cosmic-ray pixels."""
    cfg = load_config(folder / "config.yaml")
    layout = Layout(cfg.output_dir)
    for path in cfg.science_paths():
        truth = truth_frame(folder, path.name)
        signal = truth["SIGNAL"].astype(np.float32)
        for target in (layout.final_no_infill(path), layout.final(path)):
            target.parent.mkdir(parents=True, exist_ok=True)
        fits.PrimaryHDU(signal).writeto(layout.final_no_infill(path), overwrite=True)
        frame = FinalFrame(signal, np.ones_like(signal), np.zeros(signal.shape, np.uint8),
                           np.zeros(signal.shape, bool), truth["COSMIC"] > 0)
        fits.HDUList([fits.PrimaryHDU(signal), *frame.extensions()]).writeto(
            layout.final(path), overwrite=True)
    return cfg


def test_final_frames_equal_to_the_truth_score_perfectly(tmp_path):
    folder = simulate(tmp_path / "data", preset="tiny", seed=2)
    write_perfect_outputs(folder)
    scores = score_run(folder / "config.yaml")
    for kind in ("clean", "cosmic"):
        pipe = scores["background"][kind]["pipeline"]
        assert pipe["n"] > 0
        assert pipe["rms"] == 0 and pipe["robust_rms"] == 0 and pipe["median"] == 0
        assert scores["background"][kind]["stage5"]["rms"] == 0
        # The oracle keeps the noise, so the ratio to it is 0 too.
        assert pipe["rms_over_oracle"] == 0
    for estimate in ("final", "stage2"):
        spec = scores["spectrum"]["estimates"][estimate]
        assert spec["median_bias"] == 0 and spec["white_bias"] == 0 and spec["bias_scatter"] == 0
        assert spec["coverage"] == 1
        depth = scores["transit"]["estimates"][estimate]
        assert depth["depth"] == pytest.approx(scores["transit"]["injected"], abs=1e-9)
    assert scores["spectrum"]["mask_flux_fraction"] == pytest.approx(1, abs=0.01)
    cosmic = scores["cosmic"]
    assert cosmic["recall"] == 1 and cosmic["false_positive_rate"] == 0 and cosmic["n_truth"] > 0
    # No stage 1, 3, 4 outputs: those parts are null, with notes, and nothing crashes.
    assert scores["profile"] == {"stage3": None, "stage4": None}
    assert scores["background"]["clean_proxy_ok"] is None
    assert any("stage 3" in n for n in scores["notes"])
    assert "recall" in format_table(scores)


def test_pipeline_run_is_no_better_than_the_oracle(tiny_run):
    scores = score_run(tiny_run / "config.yaml")
    clean = scores["background"]["clean"]
    n = clean["oracle"]["n"]
    assert n > 1000 and all(clean[m]["n"] == n for m in ("pipeline", "master_dark"))
    assert clean["pipeline"]["rms"] >= clean["oracle"]["rms"]
    assert clean["pipeline"]["robust_rms"] >= clean["oracle"]["robust_rms"]
    assert clean["pipeline"]["rms_over_oracle"] >= 1
    assert clean["master_dark"]["robust_rms_over_oracle"] >= 1
    ok = scores["background"]["clean_proxy_ok"]
    # Stage 2 drops a proxy's cosmic ray (and K = 16's clipped mean ignores it), so leaving
    # out the pixels whose proxy had one changes the RMS by little, in either direction.
    assert ok["pipeline"]["rms"] == pytest.approx(clean["pipeline"]["rms"], rel=0.03)
    assert ok["pipeline"]["n"] < clean["pipeline"]["n"]
    assert scores["background"]["proxy_match_error"]["n"] > 0
    # Stage 2 leaves holes; stage 5 fills every trace pixel.
    assert scores["spectrum"]["estimates"]["stage2"]["coverage"] < 1
    assert scores["spectrum"]["estimates"]["final"]["coverage"] == 1
    assert scores["spectrum"]["estimates"]["match_only"]["n_bins"] == 3
    truth_depth = scores["transit"]["estimates"]["truth"]
    assert truth_depth["depth"] == pytest.approx(scores["transit"]["injected"], abs=1e-9)
    assert truth_depth["depth_err"] == 0
    profile = scores["profile"]
    assert profile["stage3"]["n_bins"] == 3 and profile["stage4"]["n_frames"] == 6
    assert profile["stage3"]["all"]["centroid"]["median_abs_error"] < 1.0
    assert 0 < scores["cosmic"]["recall"] <= 1
    assert scores["notes"] == []


def test_stage5_without_cosmic_ray_removal_has_lower_recall(tiny_run, run_copy):
    before = score_run(tiny_run / "config.yaml")["cosmic"]
    layout = Layout(load_config(run_copy / "config.yaml").output_dir)
    for path in sorted((layout.root / "final").glob("*.fits")):
        with fits.open(path, mode="update") as hdul:
            hdul["COSMIC"].data[:] = 0
    after = score_run(run_copy / "config.yaml")["cosmic"]
    assert before["recall"] > 0 and after["recall"] == 0 < before["recall"]
    assert after["false_positive_rate"] == 0 and after["n_truth"] == before["n_truth"]


def test_missing_stage_outputs_give_null_metrics(run_copy):
    config = run_copy / "config.yaml"
    layout = Layout(load_config(config).output_dir)
    shutil.rmtree(layout.root / "final")
    scores = score_run(config)
    assert scores["cosmic"] is None
    assert scores["spectrum"]["estimates"]["final"] is None
    assert scores["transit"]["estimates"]["final"] is None
    assert scores["background"]["clean"]["stage5"] is None
    assert scores["background"]["clean"]["pipeline"]["rms"] > 0       # stage 2 still scored
    assert any("5_Infill.py" in n for n in scores["notes"])
    format_table(scores)

    shutil.rmtree(layout.root)                                          # nothing run at all
    scores = score_run(config)
    assert scores["background"]["clean"]["pipeline"] is None
    assert scores["background"]["clean"]["oracle"]["rms"] > 0           # baselines still there
    assert scores["profile"] == {"stage3": None, "stage4": None}
    assert scores["spectrum"]["estimates"]["stage2"] is None
    assert not any(scores["run"]["stages_found"].values())
    text = format_table(scores)
    assert "not available" in text and "note:" in text
    path = write_score(scores, layout.root / "score.json")              # folder created
    assert json.loads(path.read_text())["cosmic"] is None


def test_nan_outputs_do_not_crash_and_json_has_no_nan(run_copy):
    config = run_copy / "config.yaml"
    cfg = load_config(config)
    layout = Layout(cfg.output_dir)
    first = cfg.science_paths()[0]
    for target in (layout.final(first), layout.final_no_infill(first)):
        with fits.open(target, mode="update") as hdul:
            hdul[0].data[:] = np.nan
    scores = score_run(config)
    assert scores["spectrum"]["estimates"]["final"]["coverage"] < 1
    path = write_score(scores, run_copy / "score.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text)
    assert not list(run_copy.glob(".score.json.*"))                    # no temporary left


def test_write_score_replaces_nan_by_null(tmp_path):
    path = write_score({"a": float("nan"), "b": [np.float32(1.5), np.inf], "c": np.int64(3)},
                       tmp_path / "score.json")
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None], "c": 3}


def test_no_truth_is_an_error(run_copy):
    shutil.rmtree(run_copy / "truth")
    with pytest.raises(PipelineError, match="truth"):
        score_run(run_copy / "config.yaml")


def test_script_writes_score_json(run_copy):
    config = run_copy / "config.yaml"
    proc = run_script("score.py", "--config", config)
    assert "recall" in proc.stdout and "oracle" in proc.stdout
    scores = json.loads((Path(load_config(config).output_dir) / "score.json").read_text())
    assert scores["cosmic"]["recall"] > 0
    other = run_copy / "elsewhere"
    shutil.move(run_copy / "truth", other)
    assert run_script("score.py", "--config", config, check=False).returncode == 1
    run_script("score.py", "--config", config, "--truth", other)


def test_brief_summary_lists_the_headline_numbers(run_copy):
    proc = run_script("score.py", "--config", run_copy / "config.yaml", "--brief")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Summary") and len(lines) == 8       # 6 rows + the JSON path
    assert "oracle" in lines[1] and "transit depth" in lines[3] and "recall" in lines[4]
    assert "white-light scatter (stage 6)" in lines[5]
    assert "white Rp/R* (stage 7) vs truth" in lines[6] and " vs 0.1" in lines[6]
    assert "In-trace background residual" not in proc.stdout          # the full table is not printed


def test_stage6_spectra_are_scored_and_reported(tiny_run, run_copy):
    scores = score_run(tiny_run / "config.yaml")
    assert scores["run"]["stages_found"]["6"] is True
    sp = scores["spectra"]
    assert sp["n_values"] > 0 and 0.5 < sp["pull_width"] < 2 and 0.5 < sp["box_pull_width"] < 2
    assert abs(sp["bias"]) < 0.05
    assert sp["white_scatter_over_oracle"] >= 0.5 and sp["oracle_white_scatter"] > 0
    assert sp["injected"] == scores["transit"]["injected"]
    fit = scores["transit_fit"]                                  # the depth is stage 7's now
    white = fit["white"]
    assert white["err_lo"] > 0 and white["pull"] == pytest.approx(
        (white["rp_rs"] - white["truth"]) / (white["err_hi"] if white["rp_rs"] < white["truth"]
                                             else white["err_lo"]))
    assert white["truth"] == pytest.approx(np.sqrt(sp["injected"]))
    text = format_table(scores)
    assert "Stage 6 spectra" in text and "Stage 7 transit fit" in text and "channels:" in text

    layout = Layout(load_config(run_copy / "config.yaml").output_dir)
    layout.light_curves.unlink()                                        # stage 6 not finished
    scores = score_run(run_copy / "config.yaml")
    assert scores["spectra"] is None and scores["run"]["stages_found"]["6"] is False
    assert any("6_Spectra.py" in n for n in scores["notes"])
    assert "Stage 6 spectra" not in format_table(scores)


def test_the_transit_oracle_divides_out_light_smeared_beyond_the_mask():
    """mask_fraction: each frame's share of the true signal inside the mask, per column (a
    smeared trace spills beyond it; the transit fit's oracle divides it out like the
    throughput)."""
    from types import SimpleNamespace

    from proxy_pixel_pipeline.score.inputs import mask_fraction

    mask = np.zeros((6, 4), bool)
    mask[2:4] = True
    sharp = np.zeros((6, 4))
    sharp[2:4, :3] = 10.0                      # column 3: no signal
    smeared = sharp.copy()
    smeared[1, :3] = smeared[4, :3] = 5.0      # a third of the light outside
    frames = {"a.fits": sharp, "b.fits": smeared}
    truth = SimpleNamespace(frame=lambda name: SimpleNamespace(signal=frames[name]))
    got = mask_fraction(truth, mask, ["data/a.fits", "b.fits"])
    np.testing.assert_allclose(got, [[1, 1, 1, 1], [2 / 3, 2 / 3, 2 / 3, 1]])
