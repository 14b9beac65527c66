"""Bad input ends in one line naming the culprit, a non-zero exit, and no output."""

import numpy as np
import pytest
from astropy.io import fits

from conftest import make_twin_dataset, run_script, write_config, write_image


def break_nothing(data):
    return None


def truncate_a_dark(data):
    path = data["folder"] / "darks" / "dark_005.fits"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return "dark_005.fits: cannot read FITS (file is truncated)"


def not_fits(data):
    (data["folder"] / "darks" / "dark_004.fits").write_text("hello")
    return "dark_004.fits"


def table_only(data):
    path = data["folder"] / "darks" / "dark_003.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("A", "E", array=np.zeros(3))])]).writeto(path, overwrite=True)
    return "dark_003.fits: no image data"


def cube(data):
    write_image(data["folder"] / "darks" / "dark_002.fits", np.zeros((3, 20, 40), np.float32))
    return "dark_002.fits: is a 3D cube"


def wrong_shape(data):
    write_image(data["folder"] / "darks" / "dark_006.fits", np.zeros((20, 41), np.float32))
    return "dark_006.fits: shape (20, 41)"


def mask_shape(data):
    write_image(data["folder"] / "mask.fits", np.ones((10, 10), np.uint8))
    return "mask.fits: mask shape"


def mask_empty(data):
    write_image(data["folder"] / "mask.fits", np.zeros((20, 40), np.uint8))
    return "no spectral"


def mask_full(data):
    write_image(data["folder"] / "mask.fits", np.ones((20, 40), np.uint8))
    return "no non-spectral"


def no_darks(data):
    write_config(data["folder"], dark_frames="nowhere/*.fits")
    return "dark_frames"


def too_few_darks(data):
    write_config(data["folder"], min_valid_samples=30)
    return "min_valid_samples"


def output_in_input(data):
    write_config(data["folder"], output_dir="darks/out")
    return "output_dir"


def input_in_output(data):
    write_config(data["folder"], output_dir=".")
    return "output_dir"


def all_candidates_hot(data):
    for path in sorted((data["folder"] / "darks").glob("*.fits")):
        image = fits.getdata(path)
        image[~data["mask"]] = 1e6 + np.arange((~data["mask"]).sum())
        write_image(path, image)
    return "no usable non-spectral pixel"


def bad_proxy_count(data):
    write_config(data["folder"], proxy_count=5000)
    return "proxy_count"


CASES = [truncate_a_dark, not_fits, table_only, cube, wrong_shape, mask_shape, mask_empty,
         mask_full, no_darks, too_few_darks, output_in_input, input_in_output,
         all_candidates_hot, bad_proxy_count]


@pytest.mark.parametrize("breaker", CASES, ids=[c.__name__ for c in CASES])
def test_stage1_bad_input(tmp_path, breaker):
    data = make_twin_dataset(tmp_path)
    culprit = breaker(data)
    before = sorted(p for p in tmp_path.rglob("*"))
    proc = run_script("1_Proxy_Matches.py", "--config", data["config"], check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and culprit in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p for p in tmp_path.rglob("*")) == before      # nothing written


def test_verbose_shows_the_traceback(tmp_path):
    data = make_twin_dataset(tmp_path)
    cube(data)
    proc = run_script("1_Proxy_Matches.py", "--config", data["config"], "--verbose", check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_missing_config_file(tmp_path):
    proc = run_script("2_Frames.py", "--config", tmp_path / "none.yaml", check=False)
    assert proc.returncode != 0 and "none.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_sentinel_marks_missing_pixels_in_integer_data(tmp_path):
    """Integer frames with 0 for lost pixels match like NaN-marked float frames."""
    data = make_twin_dataset(tmp_path / "float")
    run_script("1_Proxy_Matches.py", "--config", data["config"])
    ints = make_twin_dataset(tmp_path / "int")
    for path in sorted((ints["folder"] / "darks").glob("*.fits")):
        image = fits.getdata(path)
        write_image(path, np.where(np.isnan(image), 0, np.round(image * 1000)).astype(np.int32))
    config = write_config(ints["folder"], missing_value=0, **ints["settings"])
    run_script("1_Proxy_Matches.py", "--config", config)
    a = fits.getdata(tmp_path / "float" / "output" / "proxy_matches.fits", "MATCHES")
    b = fits.getdata(tmp_path / "int" / "output" / "proxy_matches.fits", "MATCHES")
    np.testing.assert_array_equal(a["PROXY_Y"], b["PROXY_Y"])
    np.testing.assert_array_equal(a["N_SAMPLES"], b["N_SAMPLES"])


def test_negative_sentinel_without_missing_value_is_warned(tmp_path):
    data = make_twin_dataset(tmp_path)
    for path in sorted((data["folder"] / "darks").glob("*.fits")):
        image = fits.getdata(path)
        # Counts above a bias, as a CCD gives them; lost pixels marked -1.
        counts = np.round(image - np.nanmin(image) + 1000)
        write_image(path, np.where(np.isnan(image), -1, counts).astype(np.int32))
    proc = run_script("1_Proxy_Matches.py", "--config", data["config"])
    warned = [line for line in proc.stderr.splitlines() if "set missing_value" in line]
    assert len(warned) == 1 and "negative values (e.g. -1)" in warned[0]


def test_existing_output_needs_overwrite(tmp_path):
    data = make_twin_dataset(tmp_path)
    run_script("1_Proxy_Matches.py", "--config", data["config"])
    proc = run_script("1_Proxy_Matches.py", "--config", data["config"], check=False)
    assert proc.returncode != 0 and "--overwrite" in proc.stderr


def test_entirely_missing_science_frame_is_flagged_not_fatal(tmp_path):
    data = make_twin_dataset(tmp_path, n_science=3)
    write_image(data["folder"] / "science" / "science_001.fits", np.full((20, 40), np.nan, np.float32))
    run_script("1_Proxy_Matches.py", "--config", data["config"])
    proc = run_script("2_Frames.py", "--config", data["config"])
    assert "science_001.fits: every pixel is missing" in proc.stderr
    final = fits.getdata(data["folder"] / "output" / "final_no_infill" / "science_001.fits")
    assert np.isnan(final).all()


def test_constant_pixels_are_excluded(tmp_path):
    data = make_twin_dataset(tmp_path)
    spec = sorted(s for s in data["twin_of"] if s not in data["excluded"])[0]
    for path in sorted((data["folder"] / "darks").glob("*.fits")):
        image = fits.getdata(path)
        image[spec] = 1234.0
        write_image(path, image)
    proc = run_script("1_Proxy_Matches.py", "--config", data["config"])
    table = fits.getdata(data["folder"] / "output" / "proxy_matches.fits", "MATCHES")
    row = (table["SPEC_Y"] == spec[0]) & (table["SPEC_X"] == spec[1])
    assert table["FLAG"][row][0] & 4
    assert "1 constant" in proc.stderr
