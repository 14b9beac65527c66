"""Stage 7's science: transit plus linear systematics over several visits (synthetic visits).

Every light curve here is made in the fixtures: CUTE-like visits of eight
orbit windows (ten 5-minute frames in each 95-minute orbit), a WASP-189b-like
transit, and systematics from measurable regressors (a ramp in each orbit
window, stronger in the first, a drift, the trace's offset and width).
Tolerances come from the noise: a depth error is known from the fit and
checked against the scatter of many seeds where it matters.
"""

from __future__ import annotations

import numpy as np
import pytest

from proxy_pixel_pipeline.errors import PipelineError
from proxy_pixel_pipeline.science.transit_fit import (
    CONSTANT_ONLY, SystematicsSpec, TransitCurve, TransitModel, Visit, common_mode_visits,
    design_matrix, find_orbits, fit_channel, fit_light_curves, red_noise, signed_rp)

TRANSIT = TransitModel(period=2.724, a_rs=4.6, inclination=84.0, limb_darkening=(0.5, 0.2))
T0 = 60000.0
RP = 0.07
SPEC = SystematicsSpec(ramp="exp", ramp_timescales=(12.0,), first_orbit="own", visit_order=1,
                       offset_order=1, width_order=1)


def frame_times(t0=T0, n_orbits=8, orbit_min=95.0, window_min=50.0, exp_min=5.0):
    """Mid-exposure times (days): ``window_min`` of frames in each ``orbit_min`` orbit."""
    start = t0 - n_orbits * orbit_min / 2 / 1440
    k = np.arange(int(window_min / exp_min))
    return np.concatenate([start + (o * orbit_min + k * exp_min) / 1440 for o in range(n_orbits)])


def make_visit(seed, rp=RP, noise=5e-4, ramp=0.004, ramp_tau=12.0, first=0.006, drift=0.002,
               c_off=0.003, c_width=-0.002, red=0.0, name="v", true_t0=T0, flux0=1e5):
    """A synthetic visit and its true systematics (relative)."""
    rng = np.random.default_rng(seed)
    t = frame_times()
    orbits = find_orbits(t)
    since = orbits.since_start
    offset = rng.normal(0, 1.0, t.size)
    width = 2.0 + rng.normal(0, 0.2, t.size)
    temperature = np.sin(2 * np.pi * since * 1440 / 95.0) + rng.normal(0, 0.1, t.size)
    settle = np.exp(-since * 1440 / ramp_tau)
    sys = (1 - ramp * settle - first * (orbits.number == 0) * settle
           + drift * (t - t.mean()) / np.ptp(t) + c_off * offset + c_width * (width - 2.0) / 0.2)
    flux = flux0 * TransitCurve(TRANSIT, t)(rp, true_t0) * sys
    err = np.full(t.size, noise * flux0)
    flux = flux + rng.normal(0, 1, t.size) * err
    if red:
        lag = (t[:, None] - t[None, :]) * 1440
        root = np.linalg.cholesky(np.exp(-0.5 * (lag / 40.0) ** 2) + 1e-9 * np.eye(t.size))
        flux = flux + flux0 * red * (root @ rng.normal(0, 1, t.size))
    regressors = {"trace_offset": offset, "trace_width": width, "temperature": temperature}
    return Visit(t, flux, err, T0, regressors, name=name), sys


# ---- orbits, transit model, design ---------------------------------------------------------------
def test_orbits_split_at_gaps_in_any_order():
    t = frame_times(n_orbits=3)
    rng = np.random.default_rng(1)
    order = rng.permutation(t.size)
    shuffled = t[order].copy()
    shuffled[4] = np.nan
    found = find_orbits(shuffled, gap=20.0)
    assert found.count == 3
    expected = np.repeat(np.arange(3), 10)[order]
    good = np.isfinite(shuffled)
    assert np.array_equal(found.number[good], expected[good]) and found.number[4] == -1
    assert np.allclose(found.since_start[good] * 1440, (np.arange(30) % 10 * 5.0)[order][good])
    assert find_orbits(t, gap=100.0).count == 1
    with pytest.raises(PipelineError, match="gap"):
        find_orbits(t, gap=0)


@pytest.mark.parametrize("kwargs, key", [
    ({"a_rs": 0.5}, "a_rs"), ({"inclination": 95.0}, "inclination"),
    ({"period": -1.0}, "period"), ({"limb_darkening": (0.1, 0.2, 0.3)}, "limb_darkening"),
    ({"law": "squareroot", "limb_darkening": (0.1,)}, "limb_darkening"),
    ({"model": "box"}, "duration"), ({"model": "trapezoid"}, "model"),
    ({"eccentricity": 0.1}, "eccentricity")])
def test_transit_model_names_the_bad_parameter(kwargs, key):
    values = dict(period=2.7, a_rs=4.6, inclination=84.0, limb_darkening=(0.5, 0.2))
    values.update(kwargs)
    with pytest.raises(PipelineError, match=key):
        TransitModel(**values)


def test_light_curves_box_inverse_and_table():
    t = frame_times()
    box = TransitModel(2.724, 4.6, 84.0, model="box", duration=0.18)
    lc = TransitCurve(box, t)(0.1, T0)
    inside = np.abs(t - T0) <= 0.09
    assert np.allclose(lc[inside], 0.99) and np.allclose(lc[~inside], 1.0)
    curve = TransitCurve(TRANSIT, t)
    assert np.allclose(curve(-RP, T0) - 1, 1 - curve(RP, T0))
    assert curve(RP, T0).min() < 1 - RP ** 2 < curve(RP, T0 + 2).min() + 1e-12
    depths = np.linspace(0.0, 0.01, 64)
    table = curve.table(depths, T0)
    trial = np.array([-0.002, 0.0013, 0.0049, 0.0071, 0.02])       # two outside the grid
    exact = np.stack([curve(signed_rp(d), T0) for d in trial])
    assert np.abs(table(trial) - exact).max() < 5e-6


def test_design_columns_standardized_and_first_orbit_options():
    visit, _ = make_visit(0)
    args = (visit.times, visit.orbit, visit.since_start, visit.regressors)
    own = design_matrix(SPEC, *args)
    assert own.names == ("constant", "ramp_exp", "first_orbit", "first_orbit_ramp_exp",
                         "visit_t", "trace_offset", "trace_width")
    m = own.matrix[own.usable]
    assert np.allclose(m[:, 0], 1) and np.allclose(m[:, 1:].mean(0), 0)
    assert np.allclose(m[:, 1:].std(0), 1)
    raw = own.center + own.scale * own.matrix
    assert np.allclose(raw[:, own.names.index("trace_offset")], visit.regressors["trace_offset"])
    drop = design_matrix(SystematicsSpec(first_orbit="drop", ramp="poly", ramp_order=2), *args)
    assert not drop.usable[visit.orbit == 0].any() and drop.usable[visit.orbit > 0].all()
    assert "ramp_t^2" in drop.names and "first_orbit" not in drop.names
    flat = dict(visit.regressors, temperature=np.full(visit.n_frames, 3.0))
    const = design_matrix(SystematicsSpec(temperature_order=1), visit.times, visit.orbit,
                          visit.since_start, flat)
    assert "temperature" in const.dropped and "temperature" not in const.names
    with pytest.raises(PipelineError, match="'trace_width'"):
        design_matrix(SPEC, visit.times, visit.orbit, visit.since_start,
                      {"trace_offset": visit.regressors["trace_offset"]}, label="visit 2")
    with pytest.raises(PipelineError, match="first_orbit"):
        SystematicsSpec(first_orbit="skip")


# ---- fits ----------------------------------------------------------------------------------------
def test_noiseless_visit_returns_injected_rp_and_coefficients():
    visit, _ = make_visit(3, noise=0.0)
    design = design_matrix(SPEC, visit.times, visit.orbit, visit.since_start, visit.regressors)
    coef = np.array([1.0e5, -400.0, 150.0, -600.0, 200.0, 300.0, -180.0])
    flux = TransitCurve(TRANSIT, visit.times)(RP, T0) * (design.matrix @ coef)
    clean = visit.with_flux(flux, np.full(visit.n_frames, 50.0))
    fit = fit_light_curves(clean, TRANSIT, SPEC, mode="lsq", inflate=False)
    assert fit.rp_rs == pytest.approx(RP, abs=1e-7)
    assert np.allclose(fit.visits[0].coefficients, coef, rtol=1e-7, atol=1e-4)
    assert fit.visits[0].chi2 < 1e-8
    assert np.allclose(fit.visits[0].detrended, TransitCurve(TRANSIT, visit.times)(RP, T0))


def test_planted_ramp_removed_and_flat_light_curve_gives_zero():
    visit, sys = make_visit(4, rp=0.0, ramp=0.01, first=0.02)
    fit = fit_light_curves(visit, TRANSIT, SPEC, mode="lsq")
    assert abs(fit.depth) < 3 * fit.depth_err
    assert fit.rp_rs_p16 < 0 < fit.rp_rs_p84
    res = fit.visits[0]
    assert np.std(res.detrended[res.used] - 1) < 1.2 * 5e-4          # the ramp (1-2 %) is gone
    plain = fit_light_curves(visit, TRANSIT, CONSTANT_ONLY, mode="lsq", inflate=False)
    assert plain.visits[0].reduced_chi2 > 20 * res.reduced_chi2       # it was there


def test_joint_fit_of_two_visits_halves_the_variance():
    one, _ = make_visit(5, name="a")
    copy = Visit(one.times, one.flux, one.flux_err, one.t0, one.regressors, name="b")
    single = fit_light_curves(one, TRANSIT, SPEC, mode="lsq", inflate=False)
    joint = fit_light_curves([one, copy], TRANSIT, SPEC, mode="lsq", inflate=False)
    assert joint.depth_err ** 2 / single.depth_err ** 2 == pytest.approx(0.5, rel=1e-3)
    other, _ = make_visit(6, name="c")
    joint = fit_light_curves([one, other], TRANSIT, SPEC, mode="emcee", inflate=False, seed=1)
    single = fit_light_curves(one, TRANSIT, SPEC, mode="emcee", inflate=False, seed=1)
    assert joint.depth_err ** 2 / single.depth_err ** 2 == pytest.approx(0.5, rel=0.15)
    assert [v.name for v in joint.visits] == ["a", "c"]


def test_chi2_bic_and_beta_on_white_noise():
    fits = [fit_light_curves(make_visit(100 + s)[0], TRANSIT, SPEC, mode="lsq", inflate=False)
            for s in range(24)]
    res = [f.visits[0] for f in fits]
    assert np.mean([r.reduced_chi2 for r in res]) == pytest.approx(1.0, abs=0.1)
    assert np.mean([r.beta for r in res]) == pytest.approx(1.0, abs=0.1)
    r = res[0]
    assert r.dof == r.n_used - len(r.coefficients) - 1
    assert r.bic == pytest.approx(r.chi2 + (len(r.coefficients) + 1) * np.log(r.n_used))
    pulls = [(f.rp_rs - RP) / f.rp_rs_err for f in fits]
    assert abs(np.mean(pulls)) < 0.6 and 0.6 < np.std(pulls) < 1.4


def test_red_noise_gives_beta_above_one_and_larger_errors():
    betas, ratios = [], []
    for s in range(8):
        visit, _ = make_visit(200 + s, red=6e-4)
        plain = fit_light_curves(visit, TRANSIT, SPEC, mode="lsq", inflate=False)
        inflated = fit_light_curves(visit, TRANSIT, SPEC, mode="lsq")
        betas.append(plain.visits[0].beta)
        ratios.append(inflated.depth_err / plain.depth_err)
        assert inflated.visits[0].error_scale >= max(1.0, plain.visits[0].beta) - 1e-9
    assert np.mean(betas) > 1.3 and min(ratios) >= 1.0 and np.mean(ratios) > 1.3
    white = red_noise(np.random.default_rng(0).normal(0, 1, 4000))
    assert white.beta == pytest.approx(1.0, abs=0.05)


@pytest.fixture(scope="module")
def three_visits():
    return [make_visit(10 + i, name=f"visit{i}", ramp=0.003 * (i + 1))[0] for i in range(3)]


def test_least_squares_and_emcee_agree(three_visits):
    lsq = fit_light_curves(three_visits, TRANSIT, SPEC, mode="lsq")
    mc = fit_light_curves(three_visits, TRANSIT, SPEC, mode="emcee", seed=3)
    assert abs(mc.rp_rs - lsq.rp_rs) < 0.3 * lsq.rp_rs_err
    assert mc.rp_rs_err == pytest.approx(lsq.rp_rs_err, rel=0.15)
    assert mc.autocorr_ok and not mc.warnings and 0.2 < mc.acceptance < 0.9
    assert mc.samples.shape == ((mc.steps - mc.burn) * mc.walkers, 1)
    assert mc.parameter_names == ("rp_rs",)
    assert abs(mc.rp_rs - RP) < 3 * mc.rp_rs_err


def test_same_seed_same_samples(three_visits):
    a = fit_light_curves(three_visits[:2], TRANSIT, SPEC, steps=300, burn=100, seed=7)
    b = fit_light_curves(three_visits[:2], TRANSIT, SPEC, steps=300, burn=100, seed=7)
    c = fit_light_curves(three_visits[:2], TRANSIT, SPEC, steps=300, burn=100, seed=8)
    assert np.array_equal(a.samples, b.samples) and a.rp_rs == b.rp_rs
    assert not np.array_equal(a.samples, c.samples)
    assert a.warnings and not a.autocorr_ok          # 200 steps is < 50 tau


def test_free_mid_transit_times_and_geometry_priors():
    early = 25.0 / 1440                                # one visit 25 minutes early
    visits = [make_visit(20, name="a")[0], make_visit(21, name="b", true_t0=T0 - early)[0]]
    fit = fit_light_curves(visits, TRANSIT, SPEC, mode="emcee", free_t0=True, seed=2,
                           geometry_priors={"a_rs": (4.6, 0.2), "inclination": (84.0, 1.0)})
    assert fit.parameter_names == ("rp_rs", "t0_a", "t0_b", "a_rs", "inclination")
    a, b = fit.visits
    assert abs(a.t0 - T0) < 3 * a.t0_err and abs(b.t0 - (T0 - early)) < 3 * b.t0_err
    assert b.t0_err < 0.003
    assert abs(fit.rp_rs - RP) < 3 * fit.rp_rs_err
    assert abs(fit.a_rs - 4.6) < 3 * fit.a_rs_err and fit.a_rs_err < 0.2
    assert fit.transit.a_rs == fit.a_rs and fit.samples.shape[1] == 5
    with pytest.raises(PipelineError, match="batman"):
        box = TransitModel(2.724, 4.6, 84.0, model="box", duration=0.18)
        fit_light_curves(visits, box, SPEC, free_t0=True)


def test_exponential_timescale_chosen_by_bic():
    visit, _ = make_visit(30, ramp=0.02, first=0.0, ramp_tau=4.0, noise=2e-4)
    spec = SystematicsSpec(ramp="exp", ramp_timescales=(1.0, 4.0, 30.0), first_orbit="keep")
    fit = fit_light_curves(visit, TRANSIT, spec, mode="lsq")
    res = fit.visits[0]
    assert res.timescale == 4.0 and set(res.timescale_bic) == {1.0, 4.0, 30.0}
    assert res.timescale_bic[4.0] < min(res.timescale_bic[1.0], res.timescale_bic[30.0]) - 10


@pytest.mark.parametrize("curvature, degree", [(0.0, 1), (0.006, 2)])
def test_trend_degree_chosen_by_bic(curvature, degree):
    """A visit whose throughput drifts quadratically takes degree 2 and keeps Rp/R* unbiased;
    one that drifts linearly keeps degree 1 (one parameter fewer)."""
    from dataclasses import replace

    visit, _ = make_visit(31, noise=2e-4)
    u = (visit.times - visit.times.mean()) / np.ptp(visit.times)
    bent = replace(visit, flux=visit.flux * (1.0 + curvature * (4 * u ** 2 - 1 / 3)))
    spec = replace(SPEC, visit_order=2)
    res = fit_light_curves(bent, TRANSIT, spec, mode="lsq")
    assert res.visits[0].visit_order == degree
    assert abs(res.rp_rs - RP) < 3 * res.rp_rs_err
    if curvature:                 # a linear trend alone is biased by the bend
        fixed = fit_light_curves(bent, TRANSIT, SPEC, mode="lsq")
        assert fixed.visits[0].visit_order == 1
        assert abs(fixed.rp_rs - RP) > 3 * res.rp_rs_err


def test_ramp_shape_chosen_by_bic():
    """A ramp cubic in the orbit's phase (as CUTE's own simulator has it): ``auto`` takes the
    polynomial of degree 3 and keeps Rp/R* unbiased; an exponential at any timescale leaves
    residuals whose inflation more than doubles the error.  An exponential ramp: ``auto``
    takes the exponential.  A channel fitted with the full basis takes the white light's
    choice."""
    from dataclasses import replace

    visit, _ = make_visit(32, ramp=0.0, first=0.0, noise=2e-4)
    phase = 2 * np.pi * (find_orbits(visit.times).since_start * 1440 / 95.0)
    cubic = 0.004 * (np.cos(phase) + 0.6 * np.sin(2 * phase) - 0.4 * np.cos(3 * phase))
    thermal = replace(visit, flux=visit.flux * (1.0 + cubic))
    auto = replace(SPEC, ramp="auto", ramp_order=3, ramp_timescales=(5.0, 12.0, 40.0))
    res = fit_light_curves(thermal, TRANSIT, auto, mode="lsq")
    assert (res.visits[0].ramp, res.visits[0].ramp_order) == ("poly", 3)
    assert res.visits[0].timescale is None
    assert abs(res.rp_rs - RP) < 3 * res.rp_rs_err
    exp_only = fit_light_curves(thermal, TRANSIT, replace(auto, ramp="exp"), mode="lsq")
    assert exp_only.visits[0].ramp == "exp"
    # the misfit's residuals inflate the error: the wrong shape costs precision
    assert exp_only.visits[0].bic > res.visits[0].bic + 100
    assert exp_only.rp_rs_err > 2 * res.rp_rs_err
    settling, _ = make_visit(33, noise=2e-4)       # exponential, 12-minute timescale
    res = fit_light_curves(settling, TRANSIT, auto, mode="lsq")
    assert (res.visits[0].ramp, res.visits[0].timescale) == ("exp", 12.0)
    assert abs(res.rp_rs - RP) < 3 * res.rp_rs_err
    white = fit_light_curves(thermal, TRANSIT, auto, mode="lsq")
    channel = fit_channel(thermal, white, common_mode="none", systematics=auto, mode="lsq")
    assert (channel.visits[0].ramp, channel.visits[0].ramp_order) == ("poly", 3)
    with pytest.raises(PipelineError, match="auto"):
        design_matrix(auto, visit.times, find_orbits(visit.times).number,
                      find_orbits(visit.times).since_start, visit.regressors)


def test_channels_with_and_without_common_mode():
    """A channel sharing the white light's systematics, four times noisier, another Rp/R*."""
    rng = np.random.default_rng(40)
    whites, channels = [], []
    for i in range(2):
        white, sys = make_visit(40 + i, name=f"v{i}", noise=2e-4)
        rp_channel = 0.075
        flux = 2e4 * TransitCurve(TRANSIT, white.times)(rp_channel, T0) * sys
        err = np.full(white.n_frames, 8e-4 * 2e4)
        whites.append(white)
        channels.append(white.with_flux(flux + rng.normal(0, 1, flux.size) * err, err))
    white_fit = fit_light_curves(whites, TRANSIT, SPEC, mode="lsq")
    results = {mode: fit_channel(channels, white_fit, common_mode=mode, systematics=SPEC,
                                 mode="lsq") for mode in ("none", "model", "empirical")}
    for fit in results.values():
        assert abs(fit.rp_rs - 0.075) < 3 * fit.rp_rs_err
    assert results["model"].rp_rs_err < results["none"].rp_rs_err
    divided = common_mode_visits(channels, white_fit, "model")
    assert divided[0].t0 == white_fit.visits[0].t0
    assert np.allclose(np.nanmedian(divided[0].flux / channels[0].flux), 1.0, atol=0.01)
    with pytest.raises(PipelineError, match="common_mode"):
        fit_channel(channels, white_fit, common_mode="divide")


# ---- a peer: juliet ------------------------------------------------------------------------------
def test_agrees_with_juliet(tmp_path):
    """juliet (Espinoza et al. 2019; its emcee sampler), one visit as one instrument with the
    same linear regressors (juliet adds them; here they multiply, which differs by
    ``depth * systematics`` ~ 2e-5, far below the noise) and the same fixed orbit and limb
    darkening: Rp/R* within 0.3 sigma, its error within 20 %."""
    juliet = pytest.importorskip("juliet", reason="juliet (test extra) is not installed")
    visit, _ = make_visit(50, noise=5e-4)
    design = design_matrix(SPEC, visit.times, visit.orbit, visit.since_start, visit.regressors)
    ours = fit_light_curves(visit, TRANSIT, SPEC, mode="emcee", inflate=False, seed=0,
                            steps=3000, burn=500)
    columns = design.matrix[:, 1:]
    u1, u2 = TRANSIT.limb_darkening
    priors = {"P_p1": ("fixed", TRANSIT.period), "t0_p1": ("fixed", T0),
              "p_p1": ("uniform", [0.0, 0.2]), "a_p1": ("fixed", TRANSIT.a_rs),
              "b_p1": ("fixed", TRANSIT.a_rs * np.cos(np.radians(TRANSIT.inclination))),
              "q1_CUTE": ("fixed", (u1 + u2) ** 2), "q2_CUTE": ("fixed", u1 / (2 * (u1 + u2))),
              "ecc_p1": ("fixed", 0.0), "omega_p1": ("fixed", 90.0),
              "mdilution_CUTE": ("fixed", 1.0), "mflux_CUTE": ("normal", [0.0, 0.1]),
              "sigma_w_CUTE": ("fixed", 1e-3)}                  # ppm: no extra jitter
    start = {"p_p1": 0.1, "mflux_CUTE": 0.0}
    for i in range(columns.shape[1]):
        priors[f"theta{i}_CUTE"] = ("uniform", [-0.2, 0.2])
        start[f"theta{i}_CUTE"] = 0.0
    names, kinds, values = zip(*[(k, v[0], v[1]) for k, v in priors.items()])
    norm = np.median(visit.flux)
    data = juliet.load(priors=juliet.utils.generate_priors(list(names), list(kinds), list(values)),
                       t_lc={"CUTE": visit.times}, y_lc={"CUTE": visit.flux / norm},
                       yerr_lc={"CUTE": visit.flux_err / norm},
                       linear_regressors_lc={"CUTE": columns}, starting_point=start,
                       out_folder=str(tmp_path), verbose=False)
    np.random.seed(0)
    result = data.fit(sampler="emcee", nwalkers=32, nsteps=1200, nburnin=1200,
                      emcee_factor=1e-3, progress=False)
    rp = result.posteriors["posterior_samples"]["p_p1"]
    lo, mid, hi = np.percentile(rp, [15.87, 50, 84.13])
    assert abs(ours.rp_rs - mid) < 0.3 * ours.rp_rs_err
    assert ours.rp_rs_err == pytest.approx(0.5 * (hi - lo), rel=0.2)


def test_visit_checks_lengths_and_finds_orbits():
    t = frame_times(n_orbits=3)
    with pytest.raises(PipelineError, match="'flux_err' has 3 values"):
        Visit(t, np.ones(t.size), np.ones(3), T0, name="visit 1")
    with pytest.raises(PipelineError, match="regressor 'trace_offset'"):
        Visit(t, np.ones(t.size), np.ones(t.size), T0, {"trace_offset": [1.0]})
    with pytest.raises(PipelineError, match="'t0'"):
        Visit(t, np.ones(t.size), np.ones(t.size), None)
    flux = np.ones(t.size)
    flux[3] = np.nan
    visit = Visit(t, flux, np.ones(t.size), T0)
    assert np.array_equal(visit.orbit, np.repeat(np.arange(3), 10))
    assert visit.usable.sum() == t.size - 1 and visit.mask.all()


def test_joint_likelihood_is_the_sum_of_the_visits():
    """Visits of different lengths and bases are padded to one batch: nothing leaks between them."""
    from proxy_pixel_pipeline.science.transit_fit.likelihood import Problem, VisitProblem

    a, _ = make_visit(60, name="a")
    b, _ = make_visit(61, name="b")
    b = Visit(b.times[15:], b.flux[15:], b.flux_err[15:], T0 + 0.002,
              {k: v[15:] for k, v in b.regressors.items()}, name="b")
    parts = [(a, SPEC), (b, CONSTANT_ONLY)]
    single = [VisitProblem(v, design_matrix(s, v.times, v.orbit, v.since_start, v.regressors),
                           TRANSIT) for v, s in parts]
    theta = np.array([[0.004, 0.001, -0.002], [0.005, 0.0, 0.003], [0.0049, -0.01, 0.0]])
    joint = Problem(single, TRANSIT, free_t0=True).log_prob(theta)
    alone = sum(Problem([p], TRANSIT, free_t0=True).log_prob(theta[:, [0, 1 + i]])
                for i, p in enumerate(single))
    assert np.allclose(joint, alone, rtol=1e-10)
    flat = Visit(a.times, a.flux, a.flux_err, T0 + 1.0, a.regressors, name="far")
    with pytest.raises(PipelineError, match="do not constrain"):
        fit_light_curves(flat, TRANSIT, SPEC, mode="lsq")
