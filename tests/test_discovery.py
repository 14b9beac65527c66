"""Figures and score metrics are found in their modules: adding one is adding a file."""

import importlib
import pkgutil
import sys

import pytest

from proxy_pixel_pipeline import plots
from proxy_pixel_pipeline.runtime.discovery import declared
from proxy_pixel_pipeline.score.metric import FIXED_KEYS, Metric, metrics


@pytest.fixture
def toy_package(tmp_path, monkeypatch):
    """A package ``toypkg``: two modules declaring values, a helper and a private module."""
    folder = tmp_path / "toypkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "b_mod.py").write_text("B2 = 'b2'\nB1 = 'b1'\n")
    (folder / "a_mod.py").write_text("from .b_mod import B1\nA1 = 'a1'\n")
    (folder / "helper.py").write_text("H = 'h1'\n")
    (folder / "_private.py").write_text("P = 'p1'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "toypkg"
    for name in [n for n in sys.modules if n == "toypkg" or n.startswith("toypkg.")]:
        del sys.modules[name]


def test_declared_orders_by_module_then_definition_and_skips_helpers(toy_package):
    found = declared(toy_package, lambda module, value: isinstance(value, str) and len(value) == 2,
                     skip=("helper",))
    # a_mod binds B1 (imported) before A1; b_mod's B1 is then the same value, kept once.
    assert found == [("a_mod", "b1"), ("a_mod", "a1"), ("b_mod", "b2")]


def test_figures_are_found_in_stage_order():
    funcs = plots.figures()
    assert [f.spec.filename for f in funcs] == list(plots.FIGURE_NAMES)
    stages = [f.spec.stage for f in funcs]
    assert stages == sorted(stages)
    assert len({f.__name__ for f in funcs}) == len(funcs)
    for func in funcs:
        assert getattr(plots, func.__name__) is func
        assert func.__name__ in plots.__all__
    with pytest.raises(AttributeError):
        plots.no_such_figure


def test_every_figure_module_holds_a_figure():
    """A module of plots/ that is no helper and draws nothing is a forgotten ``@SPEC.draws``."""
    modules = {f.__module__.rpartition(".")[2] for f in plots.figures()}
    others = {m.name for m in pkgutil.iter_modules(plots.__path__)} - {"drawing", "inputs"}
    assert others == modules


def test_metrics_are_found_in_stage_order():
    found = metrics()
    keys = [k for m in found for k in m.keys]
    assert len(set(keys)) == len(keys) and not set(keys) & set(FIXED_KEYS)
    existing = ["background", "spectrum", "transit", "profile", "cosmic", "spectra"]
    assert [k for k in keys if k in existing] == existing
    assert [m.stage for m in found] == sorted(m.stage for m in found)
    for metric in found:
        module = importlib.import_module(metric.table.__module__)
        assert any(v is metric for v in vars(module).values()), metric.keys


def test_a_metric_declaration_is_checked():
    def table(scores):
        return []

    with pytest.raises(ValueError, match="one of per_frame and section"):
        Metric(keys=("x",), scores=("final",), table=table)
    with pytest.raises(ValueError, match="no stage writes"):
        Metric(keys=("x",), scores=("nothing",), table=table, section=table)
    with pytest.raises(ValueError, match="belong to the score itself"):
        Metric(keys=("notes",), scores=("final",), table=table, section=table)
