"""Each stage opens exactly the products its registry entry declares (the lineage checks,
digests and provenance are derived from that declaration, so it must be the truth).

The lineage check itself also reads the headers of its inputs' own inputs (their RUNIDs):
those reads are not the stage's work and are not counted."""

import sys
from pathlib import Path

import pytest

from proxy_pixel_pipeline.runtime import registry
from proxy_pixel_pipeline.runtime.config import load_config
from proxy_pixel_pipeline.runtime.layout import Layout
from proxy_pixel_pipeline.simulate import simulate

_OPENED = []
_RECORDING = []


def _hook(event, args):
    if _RECORDING and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(Path(args[0] if not isinstance(args[0], bytes) else args[0].decode()))


sys.addaudithook(_hook)


def _products(layout, science, paths):
    """Names of the declared outputs among ``paths`` (staged files of the run itself excluded)."""
    names = set()
    for name, out in registry.outputs().items():
        value = getattr(layout, name)
        files = {value(p) for p in science} if out.per_frame else {value}
        if any(p.resolve() in {f.resolve() for f in files} for p in paths):
            names.add(name)
    return names


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    """For each stage of a tiny run, the earlier products it opened."""
    from proxy_pixel_pipeline.runtime import lineage
    from proxy_pixel_pipeline.runtime.parallel import world

    check_inputs = lineage.check_inputs

    def unrecorded(*args):
        paused = list(_RECORDING)
        _RECORDING.clear()
        try:
            return check_inputs(*args)
        finally:
            _RECORDING.extend(paused)

    mp = pytest.MonkeyPatch()
    mp.setattr(lineage, "check_inputs", unrecorded)

    folder = tmp_path_factory.mktemp("inputs") / "tiny"
    simulate(folder, preset="tiny", seed=2)
    cfg = load_config(folder / "config.yaml")
    layout, science = Layout(cfg.output_dir), cfg.science_paths()
    found = {}
    for stage in registry.STAGES:
        _OPENED.clear()
        _RECORDING.append(True)
        try:
            stage.load_runner()(cfg, world(), overwrite=True).run()
        finally:
            _RECORDING.clear()
        own = {o.name for o in stage.outputs}
        found[stage.number] = _products(layout, science, _OPENED) - own
    mp.undo()
    return found


@pytest.mark.parametrize("stage", registry.STAGES, ids=lambda s: s.script)
def test_a_stage_opens_the_products_it_declares(opened, stage):
    assert opened[stage.number] == set(stage.inputs)
