"""The information floor of bench/extrapolation_floor.py, on small simulated data."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import ROOT
from proxy_pixel_pipeline.simulate import simulate


def _bench_module(name):
    """A module of bench/ (scripts, not a package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


floor = _bench_module("extrapolation_floor").floor


@pytest.fixture(scope="module")
def floors(tmp_path_factory):
    """Floors of the same tiny detector with science frames at the darks' temperatures and 4 degC above."""
    work = tmp_path_factory.mktemp("floor")
    same = simulate(work / "same", preset="tiny", seed=5)
    warm = simulate(work / "warm", preset="tiny", seed=5, science_above_darks=4.0)
    return floor(same, ks=(1, 4, 16)), floor(warm, ks=(1, 4, 16))


def test_floor_near_oracle_when_darks_cover_science_temperatures(floors):
    same, _ = floors
    # 30 darks: the level is known to ~1/sqrt(30) of a pixel's noise, i.e. <~ 2 % in RMS.
    assert 1.0 <= same["floor"] < 1.03
    # One proxy adds its own noise (about the pixel's); the floor is then near sqrt(2).
    assert 1.25 < same["k_floor"][1] < 1.45


def test_floor_grows_with_extrapolation_and_falls_with_k(floors):
    same, warm = floors
    assert warm["floor"] > same["floor"] + 0.05
    k = warm["k_floor"]
    assert k[1] > k[4] > k[16] > warm["floor"]
    # Knowing each pixel's level exactly but not its own doubling temperature is worse
    # than the floor, which also learns the doubling temperature from the darks.
    assert warm["known_level"] > warm["floor"]


def test_a_real_estimator_reaches_but_does_not_beat_the_floor(floors):
    same, warm = floors
    # Fitting each pixel's level to its darks is all there is to learn at the darks'
    # temperatures: it sits on the floor.  Extrapolating 4 degC it lacks the per-pixel
    # doubling temperature, so it stays above the floor, but not far (the floor is a
    # bound that estimators approach, not a number off by a unit or a gain).
    assert same["dark_fit"] == pytest.approx(same["floor"], abs=0.02)
    assert warm["floor"] < warm["dark_fit"] < 1.15 * warm["floor"]
