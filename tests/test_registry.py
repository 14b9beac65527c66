"""The stage registry and the settings' declarations are the one source of both."""

import dataclasses
import inspect

import pytest
import yaml

from conftest import ROOT, write_config
from proxy_pixel_pipeline.runtime import registry, settings
from proxy_pixel_pipeline.runtime.config import Config, load_config
from proxy_pixel_pipeline.runtime.layout import Layout


def test_every_stage_script_exists_and_no_other():
    on_disk = sorted(p.name for p in ROOT.glob("[0-9]_*.py"))
    assert on_disk == sorted(registry.scripts())
    for stage in registry.STAGES:
        text = (ROOT / stage.script).read_text()
        assert f"stage_main({stage.number}, __doc__)" in text


def test_stages_read_only_earlier_stages_and_runners_load():
    for stage in registry.STAGES:
        assert all(0 < n < stage.number for n in stage.reads)
        run = stage.load_runner()
        assert list(inspect.signature(run).parameters)[:2] == ["cfg", "comm"]


def test_layout_gives_every_declared_output(tmp_path):
    layout = Layout(tmp_path)
    for stage in registry.STAGES:
        for out in stage.outputs:
            value = getattr(layout, out.name)
            path = value("/data/science_007.fits") if out.per_frame else value
            assert tmp_path in path.parents
            assert path.name == ("science_007.fits" if out.per_frame else path.name)
    with pytest.raises(AttributeError, match="no output"):
        layout.nonsense


def test_config_yaml_is_what_the_declarations_render():
    assert (ROOT / "config.yaml").read_text() == settings.render_yaml(), (
        "config.yaml differs from proxy_pixel_pipeline/runtime/settings.py: regenerate it with "
        "python -m proxy_pixel_pipeline.runtime.settings > config.yaml")


def test_config_fields_are_the_declared_settings_and_defaults_are_valid(tmp_path):
    names = [f.name for f in dataclasses.fields(Config) if f.name not in ("source", "as_written")]
    assert sorted(names) == sorted(s.name for s in settings.SETTINGS)
    path = write_config(tmp_path)
    written = yaml.safe_load(path.read_text())      # the fixture's own choices aside
    cfg = load_config(path)
    for s in settings.SETTINGS:
        assert all(n in {st.number for st in registry.STAGES} for n in s.stages), s.name
        if not s.required and s.name not in written:
            assert getattr(cfg, s.name) == s.default
        if s.choices and not s.required:
            assert s.default in s.choices


def test_a_stage_digest_ignores_settings_of_stages_it_does_not_read(tmp_path):
    a = load_config(write_config(tmp_path))
    b = load_config(write_config(tmp_path, proxy_method="lsq"))
    # Every stage reads the match table, directly or through stage 2 (stage 3: the Final Frames).
    assert all(a.digest(n) != b.digest(n) for n in (1, 2, 3, 4, 5))
    d = load_config(write_config(tmp_path, proxy_combine="median"))
    # Stage 1 does not read stage 2's products: stage 2's setting does not concern it.
    assert a.digest(1) == d.digest(1) and all(a.digest(n) != d.digest(n) for n in (2, 3, 4, 5))
    c = load_config(write_config(tmp_path, lacosmic_maxiter=2))
    # A stage-5 setting changes stage 5 and what reads it (stage 6), nothing before.
    later = {s.number for s in registry.STAGES if 5 in registry.upstream(s.number)}
    for stage in registry.STAGES:
        changed = a.digest(stage.number) != c.digest(stage.number)
        assert changed == (stage.number in later), stage.number


def test_render_config_writes_the_given_keys_in_declaration_order(tmp_path):
    values = {"transit_mid": 60310.116319444445, "dark_frames": "*d/*.fits", "gain": 1.25,
              "science_frames": "s/*.fits", "spectral_mask": "m.fits", "output_dir": "../out",
              "proxy_method": "lsq", "wavelength_solution": [2479.0, 0.40400586223742063],
              "missing_value": None}
    text = settings.render_config(values, ["written by a test", "second line"])
    assert text.startswith("# written by a test\n# second line\n")
    keys = [line.split(":")[0] for line in text.splitlines() if line and line[0] not in "# "]
    order = [s.name for s in settings.SETTINGS]
    assert keys == sorted(values, key=order.index)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.dark_frames == str(tmp_path / "*d" / "*.fits")      # a leading * is quoted
    assert cfg.transit_mid == values["transit_mid"] and cfg.gain == 1.25
    assert cfg.wavelength_solution == tuple(values["wavelength_solution"])
    assert cfg.missing_value is None and cfg.proxy_method == "lsq"
    with pytest.raises(ValueError, match="no_such_key"):
        settings.render_config({"no_such_key": 1})
