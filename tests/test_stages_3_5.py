"""Stages 3-5 as users run them, on the tiny simulated data set."""

import numpy as np
import pytest
from astropy.io import fits

from proxy_pixel_pipeline.flags import DQFlag
from proxy_pixel_pipeline.runtime import registry
from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.stages.series import stage5_series
from proxy_pixel_pipeline.simulate import simulate

from conftest import run_script

STAGES = [s.script for s in registry.STAGES if s.number <= 5]


def run_pipeline(config, ranks=None, stages=STAGES):
    for script in stages:
        run_script(script, "--config", config, "--overwrite", ranks=ranks)
    return Layout(load_config(config).output_dir)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    folder = simulate(tmp_path_factory.mktemp("tiny") / "data", preset="tiny", seed=5)
    config = folder / "config.yaml"
    return config, run_pipeline(config)


def test_every_stage_writes_its_outputs(tiny_run):
    config, layout = tiny_run
    cfg = load_config(config)
    assert layout.median_frame.is_file() and layout.median_fits.is_file()
    for science in cfg.science_paths():
        for path in (layout.background(science), layout.final_no_infill(science),
                     layout.final_fits(science), layout.final(science)):
            assert path.is_file(), path
        with fits.open(layout.final(science)) as hdul:
            assert hdul[0].header["STAGE"] == 5
            assert {"INFILLED", "COSMIC"} <= {h.name for h in hdul}
    table = fits.getdata(layout.median_fits, "FITS")
    n_columns = fits.getdata(layout.median_frame).shape[1]
    assert len(table) == -(-n_columns // cfg.bin_width)          # last partial bin kept
    assert table["COLUMN_HI"][-1] == n_columns


def test_infill_leaves_no_empty_or_negative_trace_pixel(tiny_run):
    config, layout = tiny_run
    cfg = load_config(config)
    series = stage5_series(cfg, layout, cfg.science_paths())
    series["paths"] = cfg.science_paths()
    mask = fits.getdata(cfg.spectral_mask).astype(bool)
    for science in cfg.science_paths():
        before = fits.getdata(layout.final_no_infill(science))
        with fits.open(layout.final(science)) as hdul:
            after, infilled = hdul[0].data, hdul["INFILLED"].data.astype(bool)
        assert np.isfinite(after[mask]).all()
        empty = mask & ~np.isfinite(before)
        # Every empty pixel is infilled; of the others only negative ones
        # (below -negative_sigma x noise), never a positive one.
        assert infilled[empty].all()
        assert (before[infilled & ~empty] < 0).all()
        holes = infilled
        # Untouched pixels keep their value unless they were a cosmic ray or next to one.
        cosmic = fits.getdata(layout.final(science), "COSMIC").astype(bool)
        grown = (fits.getdata(layout.final(science), "DQ") & DQFlag.COSMIC_GROWN) != 0
        assert not (grown & (cosmic | holes)).any()
        keep = mask & ~holes & ~cosmic & ~grown
        np.testing.assert_array_equal(after[keep], before[keep])
        # Infilled pixels hold the series' prediction for this very frame (its stage-4
        # fit, corrected by what the series learnt at that pixel), at their own rows.
        i = series["paths"].index(science)
        prediction = np.full(after.shape, np.nan, np.float32)
        prediction.ravel()[series["trace"]] = series["prediction"][i]
        np.testing.assert_array_equal(after[infilled & ~cosmic], prediction[infilled & ~cosmic])
        np.testing.assert_array_equal(after[grown], prediction[grown])
        # (Pixels empty in every frame take the model scaled by their column's flux, which
        # keeps a line: tests/test_cosmic_rays.py, test_a_pixel_empty_in_every_frame_inside_a_line_*.)


def test_infilled_pixels_recover_the_true_signal(tiny_run):
    config, layout = tiny_run
    cfg = load_config(config)
    truth = config.parent / "truth"
    gain, read_noise = cfg.gain, cfg.read_noise
    residual, noise = [], []
    for science in cfg.science_paths():
        with fits.open(layout.final(science)) as hdul:
            after = hdul[0].data
            infilled = hdul["INFILLED"].data.astype(bool) & ~hdul["COSMIC"].data.astype(bool)
        with fits.open(truth / science.name) as hdul:
            signal, background = hdul["SIGNAL"].data, hdul["BACKGROUND"].data
        residual.append((after - signal)[infilled])
        # One pixel's noise in ADU (signal + dark shot noise, read noise), bias ~1000 ADU.
        electrons = (signal + background - 1000.0)[infilled] * gain
        noise.append(np.sqrt(np.maximum(electrons, 0) + read_noise**2) / gain)
    residual, noise = np.concatenate(residual), np.concatenate(noise)
    assert len(residual) > 50
    # The fit of a whole bin's profile beats one pixel's noise: typical infilled values
    # scatter about the truth by less than that noise, without bias.  (Robust: on this
    # cosmic-ray-rich preset a few frames' fits are pulled by hits stage 5 removes later.)
    robust = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    assert robust < np.median(noise)
    assert abs(np.median(residual)) < 0.3 * np.median(noise)


def test_final_frames_identical_on_one_and_two_ranks(tiny_run, tmp_path):
    """Stages 2-5 again on 2 ranks, into a copy: every HDU of every frame is the same."""
    import shutil

    config, layout = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(config.parent, copy)
    cfg = load_config(config)
    run_pipeline(copy / "config.yaml", ranks=2, stages=STAGES[1:])
    other = Layout(load_config(copy / "config.yaml").output_dir)
    for p in cfg.science_paths():
        for product in ("background", "final_no_infill", "final"):
            with fits.open(getattr(layout, product)(p)) as a, fits.open(getattr(other, product)(p)) as b:
                assert [h.name for h in a] == [h.name for h in b]
                for ha, hb in zip(a, b):
                    np.testing.assert_array_equal(ha.data, hb.data, err_msg=f"{product} {ha.name}")
        one = fits.getdata(layout.final_fits(p), "FITS")
        two = fits.getdata(other.final_fits(p), "FITS")
        for name in two.names:
            np.testing.assert_array_equal(two[name], one[name], err_msg=name)


def test_stage4_refuses_stale_median_fits(tiny_run):
    config, layout = tiny_run
    text = config.read_text() + "bin_width: 7\n"
    other = config.with_name("other.yaml")
    other.write_text(text)
    proc = run_script("4_Final_Fits.py", "--config", other, check=False)
    assert proc.returncode != 0 and "3_Median_Fits.py" in proc.stderr
    assert "bin_width: 25 in the file, 7 in other.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_stage_setting_makes_stale_only_what_depends_on_it(tiny_run):
    """A new proxy rule makes the Final Frames stale (and, through them, the Median Frame
    fits): stage 4 names the earliest stage to rerun; stage 5's settings concern neither."""
    config, _ = tiny_run
    other = config.with_name("other_rule.yaml")
    other.write_text(config.read_text().replace("proxy_method: median", "proxy_method: lsq"))
    proc = run_script("4_Final_Fits.py", "--config", other, check=False)
    assert proc.returncode != 0 and "rerun 2_Frames.py" in proc.stderr
    assert "3_Median_Fits.py" not in proc.stderr


def test_stale_inputs_are_refused_after_an_earlier_stage_reruns(tiny_run, tmp_path):
    """Rerunning stage 1 makes the stage-2 frames stale even with the same config."""
    import shutil

    config, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(config.parent, copy)
    run_script("1_Proxy_Matches.py", "--config", copy / "config.yaml", "--overwrite")
    for script, culprit in (("4_Final_Fits.py", "2_Frames.py"), ("5_Infill.py", "2_Frames.py")):
        proc = run_script(script, "--config", copy / "config.yaml", "--overwrite", check=False)
        assert proc.returncode != 0, proc.stderr
        assert "made from an older output/proxy_matches.fits" in proc.stderr and culprit in proc.stderr
    run_script("2_Frames.py", "--config", copy / "config.yaml", "--overwrite")
    # Stage 3 fits the Median Frame of stage 2's frames: its fits are stale now too.
    proc = run_script("4_Final_Fits.py", "--config", copy / "config.yaml", "--overwrite", check=False)
    assert proc.returncode != 0 and "median_fits.fits" in proc.stderr
    assert "rerun 3_Median_Fits.py" in proc.stderr
    run_script("3_Median_Fits.py", "--config", copy / "config.yaml", "--overwrite")
    run_script("4_Final_Fits.py", "--config", copy / "config.yaml", "--overwrite")
    proc = run_script("5_Infill.py", "--config", copy / "config.yaml", "--overwrite", check=False)
    assert proc.returncode == 0, proc.stderr


def test_median_frame_is_the_median_of_the_final_frames(tiny_run):
    """Stage 3 fits the Median Frame of stage 2's Final Frames (the original code's choice),
    not of the raw science frames, and records them as its inputs."""
    config, layout = tiny_run
    cfg = load_config(config)
    finals = np.array([fits.getdata(layout.final_no_infill(p)) for p in cfg.science_paths()])
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanmedian(finals, axis=0).astype(np.float32)
    np.testing.assert_array_equal(fits.getdata(layout.median_frame), want)
    header = fits.getheader(layout.median_frame)
    parents = {v for k, v in header.items() if k.startswith("PARENT")}
    assert fits.getheader(layout.final_no_infill(cfg.science_paths()[0]))["RUNID"] in parents
