"""The ``wasp189b`` preset: the shape and numbers of the real visit (../shared/cute-instrument.md)."""

import numpy as np
import pytest
from astropy.io import fits

from proxy_pixel_pipeline import simulate as sim
from proxy_pixel_pipeline.simulate.systematics import science_times, visit_systematics


def test_preset_parameters_are_the_visits():
    p = sim.PRESETS["wasp189b"]
    assert (p.n_rows, p.n_columns, p.n_darks, p.n_science) == (100, 2048, 134, 61)
    assert p.missing_value is not None and float(p.missing_value).is_integer()   # integer ADU
    assert p.mask_lines == ((32.0, 58.0), (65.0, 90.0)) and p.trace_columns == (50, 2000)
    assert p.scatter_e > 0 and p.throughput_sigma == 0       # no unobservable throughput draws
    trace = sim._trace_model(p)
    assert trace["mask"].sum() == 63407 and (~trace["mask"]).sum() == 141393
    cols = slice(50, 2001)
    sep = (trace["mu2"] - trace["mu1"])[cols]
    assert np.median(sep) == pytest.approx(9.7, abs=0.3) and sep[0] == pytest.approx(6, abs=0.8)
    assert np.median(trace["sig1"][cols]) == pytest.approx(3.2, abs=0.05)
    assert np.median(trace["sig2"][cols]) == pytest.approx(3.5, abs=0.05)
    amp = trace["amp1_e"][cols] / p.gain
    assert 80 <= np.median(amp) <= 100 and amp.min() >= 10 and amp.max() <= 160
    assert not trace["signal_e"][:, :50].any() and not trace["signal_e"][:, 2001:].any()
    # CCD temperatures of the full visit follow the orbit over -6 to -12 degC.
    times = science_times(p)
    (_, t_dark), (_, t_sci) = sim._temperatures(p, np.random.default_rng(0), times["time"])
    temps = np.concatenate([t_dark, t_sci])
    assert -12.6 <= temps.min() < -11 and -7 < temps.max() <= -5.4
    # Frames in orbit windows, half of each ~96-min orbit, 300 s exposures, several orbits.
    assert p.orbit_visible_fraction == 0.5 and times["orbit"].max() >= 6
    # The trace's amplitude changes from frame to frame through modelable systematics: the
    # smear of the pointing jitter (<= 6 arcsec in most exposures), slit loss, ramps.
    sysm = visit_systematics(p, times, np.random.default_rng(0))
    assert np.mean(sysm["jitter"] <= 6.0) > 0.5 and sysm["jitter"].max() > 6.0
    peak = trace["sig1"][1000] / np.hypot(trace["sig1"][1000], sysm["smear"])
    factor = peak * sysm["slit"] * sysm["throughput"]
    assert 0.5 <= factor.min() and factor.max() <= 1.0 and np.ptp(factor) > 0.15
    assert 0.003 < 1 - sysm["ramp"].min() < 0.1                       # ramps of ~1 %


def test_reduced_simulation_has_the_visits_frames(tmp_path):
    out = sim.simulate(tmp_path / "w", "wasp189b", seed=2, n_darks=3, n_science=2)
    dark = fits.getdata(out / "darks" / "dark_0000.fits")
    header = fits.getheader(out / "science" / "science_0000.fits")
    science = fits.getdata(out / "science" / "science_0000.fits")
    assert dark.shape == (100, 2048) and dark.dtype.kind == "i" and science.dtype.kind == "i"
    assert header["CCDTEMP"] < -5 and header["EXPTIME"] == 300.0 and header["JITTER"] > 0
    with fits.open(out / "truth" / "truth.fits") as t:
        excluded = (t["DEAD"].data != 0) | (t["HOT"].data != 0)
        frames = t["FRAMES"].data
        assert 0.06 <= excluded.mean() <= 0.08                     # ~7 % (14,310 of 204,800)
        assert (frames["SCATTER"] > 0).all()                       # in darks and science alike
        assert len(set(np.round(frames["SCATTER"], 6))) == len(frames)   # changes frame to frame
        systematics = t["SYSTEMATICS"].data
        science = frames[frames["KIND"] == "science"]
        assert science["FLUX_SCALE"] == pytest.approx(
            systematics["TRANSIT_FLUX"] * systematics["THROUGHPUT"] * systematics["SLIT_FACTOR"])
        assert science["THROUGHPUT"] == pytest.approx(systematics["RAMP"] * systematics["DRIFT"])
        dead = t["DEAD"].data != 0
    assert (dark[dead] == sim.PRESETS["wasp189b"].missing_value).all()   # lost in every frame
    with fits.open(out / "truth" / "science_0000.fits") as t:
        background = t["BACKGROUND"].data
    # The scattered light's gradient is part of the true background: a smooth tilt remains
    # after the per-pixel dark pattern is averaged along the rows.
    rows = np.median(background, axis=1)
    assert np.ptp(rows) > 1.0


def test_phase_cubic_ramp_is_a_cubic_in_the_window_and_leaves_the_other_draws():
    """``ramp_shape="phase_cubic"``: the throughput is the same cubic of the orbit's phase in
    every window (deeper in the first), and every other draw of the visit is unchanged."""
    from dataclasses import replace
    p = sim.PRESETS["wasp189b"]
    cubic = replace(p, ramp_shape="phase_cubic")
    times = science_times(p)
    a = visit_systematics(p, times, np.random.default_rng(3))
    b = visit_systematics(cubic, times, np.random.default_rng(3))
    for key in ("offset", "smear", "slit", "drift"):
        assert np.array_equal(a[key], b[key]), key
    assert not a["ramp_cubic"].any() and np.count_nonzero(b["ramp_cubic"]) == 3
    x = 2 * times["since_window"] / (p.orbit_visible_fraction * p.orbit_period) - 1
    later = times["orbit"] > 1
    deficit = (1 - b["ramp"][later]) / b["ramp_amplitude"]
    fit = np.polyfit(x[later], deficit, 3)
    assert np.allclose(fit[::-1], [0, *b["ramp_cubic"]], atol=1e-9)
    first = ~later
    assert np.allclose(1 - b["ramp"][first],
                       p.ramp_first_orbit * b["ramp_amplitude"] * np.polyval(fit, x[first]))
    with pytest.raises(ValueError, match="ramp_shape"):
        sim.simulate("unused", "wasp189b", seed=1, ramp_shape="cubic")
