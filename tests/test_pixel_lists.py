"""Pixel lists: CSV tags of the original code or FITS masks, read the same everywhere."""

import numpy as np
import pytest
from astropy.io import fits

from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.errors import PipelineError
from proxy_pixel_pipeline.io.pixel_lists import read_mask
from proxy_pixel_pipeline.flags import PixelFlag
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.io.pixel_lists import read_pixels, tags_of, write_tags

from conftest import run_script, write_config, write_image


def test_tags_are_row_major_with_the_frame_column_count(tmp_path):
    mask = np.zeros((5, 7), bool)
    mask[2, 3] = mask[4, 6] = mask[0, 0] = True
    assert list(tags_of(mask)) == [0, 7 * 2 + 3, 7 * 4 + 6]
    path = tmp_path / "spec.csv"
    path.write_text("tag\n17\n\n# comment\n0\n34.0\n17,\n")     # header, blanks, dup, float, comma
    np.testing.assert_array_equal(read_pixels(path, (5, 7)), mask)
    write_tags(tmp_path / "again.csv", mask)
    np.testing.assert_array_equal(read_mask(tmp_path / "again.csv", (5, 7)), mask)


@pytest.mark.parametrize("text, line, what", [
    ("12\n3\n35\n", 3, "outside the 5 x 7 frame"),
    ("12\nabc 4\n", 2, "not a pixel tag"),
    ("tag\n1\n-4\n", 3, "not a pixel tag"),
    ("1\n2.5\n", 2, "not a pixel tag"),
    ("1,2\n", 1, "not a pixel tag"),
])
def test_a_bad_tag_file_fails_with_one_line_naming_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(PipelineError) as err:
        read_pixels(path, (5, 7))
    message = str(err.value)
    assert "\n" not in message and str(path) in message and f"line {line}:" in message
    assert what in message


def test_a_bad_tag_file_stops_stage1_with_one_line(twin_dataset):
    folder = twin_dataset["folder"]
    ny, nx = twin_dataset["mask"].shape
    (folder / "spec.csv").write_text("\n".join(map(str, tags_of(twin_dataset["mask"])))
                                     + f"\n{ny * nx}\n")
    config = write_config(folder, spectral_mask="spec.csv")
    proc = run_script("1_Proxy_Matches.py", "--config", config, check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "spec.csv: line" in last and "outside" in last
    assert not Layout(load_config(config).output_dir).matches.exists()


def test_csv_mask_gives_the_same_match_table_as_the_fits_mask(twin_dataset):
    folder = twin_dataset["folder"]
    write_tags(folder / "spec.csv", twin_dataset["mask"])
    tables = []
    for mask, out in (("mask.fits", "out_fits"), ("spec.csv", "out_csv")):
        config = write_config(folder, spectral_mask=mask, output_dir=out)
        run_script("1_Proxy_Matches.py", "--config", config)
        # A caller with only the path (stages 2-3, score) decodes the CSV with the darks' shape.
        np.testing.assert_array_equal(load_config(config).pixel_list("spectral_mask"),
                                      twin_dataset["mask"])
        with fits.open(folder / out / "proxy_matches.fits") as hdul:
            tables.append((hdul["MATCHES"].data.copy(), hdul["PIXFLAGS"].data.copy()))
    for name in tables[0][0].names:
        np.testing.assert_array_equal(tables[0][0][name], tables[1][0][name])
    np.testing.assert_array_equal(tables[0][1], tables[1][1])


def test_candidate_and_exclude_lists_restrict_both_sides(twin_dataset):
    folder = twin_dataset["folder"]
    mask = twin_dataset["mask"]
    spec = np.argwhere(mask)
    twins = np.array([twin_dataset["twin_of"][tuple(s)] for s in spec])
    # Exclude two spectral pixels and the twin of a third; forbid the twin of a fourth as a
    # candidate (FITS candidate mask), the exclusions as a CSV.
    excluded = np.zeros(mask.shape, bool)
    excluded[tuple(spec[10])] = excluded[tuple(spec[11])] = True
    excluded[tuple(twins[20])] = True
    write_tags(folder / "exclude.csv", excluded)
    candidates = ~mask
    candidates[tuple(twins[30])] = False
    write_image(folder / "candidates.fits", candidates.astype(np.uint8))
    # One proxy, the planted twin (with K > 1 cross-fitted on 2 x 12 darks, a twin with 9
    # common valid darks in one half has no offset measured there and is not chosen).
    config = write_config(folder, exclude_pixels="exclude.csv", candidate_pixels="candidates.fits",
                          **twin_dataset["settings"])
    run_script("1_Proxy_Matches.py", "--config", config)
    with fits.open(folder / "output" / "proxy_matches.fits") as hdul:
        table, flags = hdul["MATCHES"].data, hdul["PIXFLAGS"].data
        assert hdul[0].header["NEXCL"] == 2
    proxy = np.stack([table["PROXY_Y"][:, 0], table["PROXY_X"][:, 0]], 1)
    assert flags[tuple(spec[10])] & PixelFlag.EXCLUDED and flags[tuple(twins[20])] & PixelFlag.EXCLUDED
    for i in (10, 11):
        assert tuple(proxy[i]) == (-1, -1) and table["FLAG"][i] & PixelFlag.EXCLUDED
    used = {tuple(p) for p in proxy}
    assert tuple(twins[20]) not in used and tuple(twins[30]) not in used
    # Everyone else still finds the planted twin.
    others = [i for i in range(len(spec)) if i not in (10, 11, 20, 30)
              and tuple(spec[i]) not in twin_dataset["excluded"]]
    assert all(tuple(proxy[i]) == tuple(twins[i]) for i in others)
