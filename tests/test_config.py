"""Config loading: required keys, defaults, types, ranges, relative paths."""

from pathlib import Path

import pytest

from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.errors import PipelineError

from conftest import write_config

ROOT = Path(__file__).resolve().parents[1]


def test_repository_config_is_valid_and_documents_every_key():
    cfg = load_config(ROOT / "config.yaml")
    text = (ROOT / "config.yaml").read_text()
    for key in cfg.values():
        assert f"{key}:" in text, f"config.yaml does not document '{key}'"


def test_defaults_and_relative_paths(tmp_path):
    cfg = load_config(write_config(tmp_path))
    assert cfg.proxy_method == "median" and cfg.bin_width == 25
    # Issue 11: 16 proxies, clipped mean, offsets by default (the seed's K = 1 one setting away).
    assert (cfg.proxy_count, cfg.proxy_combine, cfg.proxy_offset) == (16, "clipped_mean", True)
    assert cfg.missing_value is None
    assert Path(cfg.output_dir) == tmp_path.resolve() / "output"
    assert Path(cfg.spectral_mask) == tmp_path.resolve() / "mask.fits"


@pytest.mark.parametrize("settings, culprit", [
    ({"block_sise": 3}, "block_sise"),                 # unknown key (typo)
    ({"bin_width": "25"}, "bin_width"),                # wrong type
    ({"bin_width": 2.5}, "bin_width"),
    ({"bin_width": 0}, "bin_width"),                   # out of range
    ({"proxy_method": "mean"}, "proxy_method"),        # not a choice
    ({"fill_negative": "yes"}, "fill_negative"),
    ({"gain": -1}, "gain"),
    ({"missing_value": "zero"}, "missing_value"),
    ({"output_dir": None}, "output_dir"),              # required key missing
])
def test_bad_values_name_the_key(tmp_path, settings, culprit):
    path = write_config(tmp_path, **settings)
    with pytest.raises(PipelineError, match=culprit) as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dark_frames: [unclosed\n")
    with pytest.raises(PipelineError, match="bad.yaml.*YAML"):
        load_config(bad)


def test_empty_glob_names_the_key(tmp_path):
    cfg = load_config(write_config(tmp_path))
    with pytest.raises(PipelineError, match="dark_frames"):
        cfg.dark_paths()


def test_digest_tracks_relevant_keys(tmp_path):
    a = load_config(write_config(tmp_path))
    b = load_config(write_config(tmp_path, bin_width=10))
    assert a.digest(1) == b.digest(1) and a.digest(2) == b.digest(2)
    assert a.digest(3) != b.digest(3)


def test_digest_survives_moving_the_run_folder(tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    a = load_config(write_config(tmp_path / "here"))
    b = load_config(write_config(tmp_path / "there"))
    assert a.output_dir != b.output_dir
    assert a.digest(5) == b.digest(5)


def test_a_folder_instead_of_a_glob_is_named(tmp_path):
    (tmp_path / "darks").mkdir()
    with pytest.raises(PipelineError, match=r"key 'dark_frames' is a folder .*darks/\*\.fits"):
        load_config(write_config(tmp_path, dark_frames="darks"))
