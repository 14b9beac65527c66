"""Tests of proxy_pixel_pipeline.science.profiles (double-Gaussian column-profile fits).

Synthetic profiles: a CUTE-like double Gaussian (peaks of 800 and 1000 ADU,
widths 2.5 and 3 px, 8 px apart) on 1000 ADU, 40 rows, white noise of
5 ADU.  Tolerances are multiples of the reported (or noise-derived)
uncertainties.
"""

import dataclasses
import warnings

import numpy as np
import pytest
from astropy.table import Table
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from proxy_pixel_pipeline.science.profiles import (
    PARAM_NAMES,
    FitFlag,
    ProfileFits,
    bin_edges,
    binned_profiles,
    double_gaussian,
    fit_final_profiles,
    fit_median_profiles,
    model_frame,
)

NOISE = 5.0  # ADU, white noise of the synthetic profiles
N_ROWS = 40
TRUE = dict(amp1=800.0, mu1=16.0, sigma1=2.5, amp2=1000.0, mu2=24.0, sigma2=3.0, offset=1000.0)
TRUE_VEC = np.array([TRUE[n] for n in PARAM_NAMES])


def _profiles(params, n_bins, rng, noise=NOISE, rows=None):
    rows = np.arange(N_ROWS) if rows is None else rows
    clean = double_gaussian(rows, *params)
    return np.tile(clean, (n_bins, 1)) + rng.normal(0.0, noise, (n_bins, len(rows)))


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.fixture
def median_profiles(rng):
    """40 noise realizations of the true profile: one per bin."""
    return _profiles(TRUE_VEC, 40, rng)


@pytest.fixture
def median_fits(median_profiles):
    return fit_median_profiles(median_profiles)


# -------------------------------------------------------------- model/binning

def test_double_gaussian_values():
    y = np.array([16.0, 24.0, 1e3])
    v = double_gaussian(y, *TRUE_VEC)
    g = lambda a, m, s: a * np.exp(-0.5 * ((y - m) / s) ** 2)  # noqa: E731
    assert_allclose(v, g(800, 16, 2.5) + g(1000, 24, 3.0) + 1000)
    assert_allclose(v[2], 1000.0)


def test_bin_edges_keeps_last_partial_bin():
    e = bin_edges(2048, 25)
    assert len(e) - 1 == 82
    assert e[0] == 0 and e[-1] == 2048
    assert np.all(np.diff(e)[:-1] == 25) and np.diff(e)[-1] == 23
    assert_array_equal(bin_edges(100, 25), [0, 25, 50, 75, 100])
    assert_array_equal(bin_edges(10, 25), [0, 10])
    with pytest.raises(ValueError):
        bin_edges(10, 0)


@settings(max_examples=60, deadline=None)
@given(n_columns=st.integers(1, 300), bin_width=st.integers(1, 40))
def test_bin_edges_property(n_columns, bin_width):
    e = bin_edges(n_columns, bin_width)
    widths = np.diff(e)
    assert e[0] == 0 and e[-1] == n_columns
    assert len(widths) == -(-n_columns // bin_width)
    assert np.all(widths[:-1] == bin_width) and 0 < widths[-1] <= bin_width


def _naive_binned(frame, w):
    n_cols = frame.shape[1]
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for lo in range(0, n_cols, w):
            out.append(np.nanmedian(frame[:, lo:lo + w], axis=1))
    return np.array(out)


def test_binned_profiles_matches_hand_computation(rng):
    frame = rng.normal(size=(7, 53))
    frame[rng.random(frame.shape) < 0.2] = np.nan
    frame[3, 10:20] = np.nan          # row 3 empty in bin 1 (columns 10-19)
    edges, prof = binned_profiles(frame, 10)
    assert_array_equal(edges, [0, 10, 20, 30, 40, 50, 53])
    assert prof.shape == (6, 7)
    assert np.isnan(prof[1, 3])
    assert_allclose(prof, _naive_binned(frame, 10), equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(1, 6), n_cols=st.integers(1, 60), w=st.integers(1, 12),
       seed=st.integers(0, 2**31), nan_frac=st.floats(0, 1))
def test_binned_profiles_property(n_rows, n_cols, w, seed, nan_frac):
    r = np.random.default_rng(seed)
    frame = r.integers(-5, 5, (n_rows, n_cols)).astype(float)  # ties exercise the median
    frame[r.random(frame.shape) < nan_frac] = np.nan
    _, prof = binned_profiles(frame, w)
    assert_allclose(prof, _naive_binned(frame, w), equal_nan=True)


# -------------------------------------------------------------- median fits

def test_median_fit_recovers_parameters(median_fits):
    f = median_fits
    assert np.all(f.flag == FitFlag.GOOD)
    assert np.all(f.n_points == N_ROWS)
    # Each realization within 5 sigma of the truth, using its own errors.
    pulls = (f.params - TRUE_VEC) / f.errors
    assert np.all(np.abs(pulls) < 5)
    assert_allclose(f.ratio, f.amp1 / f.amp2)
    assert np.all(f.mu1 < f.mu2)
    # chi2_red without sigma is the residual variance, ~NOISE**2
    # (33 degrees of freedom: relative scatter sqrt(2/33) = 0.25).
    assert_allclose(np.median(f.chi2_red), NOISE**2, rtol=0.25)


def test_median_fit_uncertainties_are_right(median_fits):
    """Pull test: the scatter of 40 realizations matches the reported errors."""
    pulls = (median_fits.params - TRUE_VEC) / median_fits.errors
    # std of 40 unit-variance pulls: 1 +- 0.11; mean: 0 +- 0.16.
    assert np.all(np.abs(pulls.mean(axis=0)) < 0.6)
    assert np.all((pulls.std(axis=0) > 0.65) & (pulls.std(axis=0) < 1.45))


def test_median_fit_with_given_sigma(median_profiles):
    f = fit_median_profiles(median_profiles, sigma=NOISE)
    assert np.all(f.flag == FitFlag.GOOD)
    # chi2 per dof ~ 1 +- 0.25 for 33 dof.
    assert 0.75 < np.mean(f.chi2_red) < 1.25
    pulls = (f.params - TRUE_VEC) / f.errors
    assert np.all((pulls.std(axis=0) > 0.65) & (pulls.std(axis=0) < 1.45))


def test_median_fit_row_coordinates(rng):
    rows = np.arange(200, 200 + N_ROWS)
    params = TRUE_VEC.copy()
    params[[1, 4]] += 200
    f = fit_median_profiles(_profiles(params, 3, rng, rows=rows), rows=rows)
    assert np.all(np.abs(f.mu1 - 216) < 5 * f.mu1_err)
    assert np.all(np.abs(f.mu2 - 224) < 5 * f.mu2_err)


@pytest.mark.parametrize("separation", [0.0, 1.0])
def test_merged_peaks_give_single(rng, separation):
    """Peaks closer than one width: SINGLE, and a good single-Gaussian fit."""
    params = np.array([800.0, 20.0 - separation / 2, 3.0, 1000.0, 20.0 + separation / 2, 3.0,
                       1000.0])
    f = fit_median_profiles(_profiles(params, 5, rng))
    assert np.all(f.flag == FitFlag.SINGLE)
    assert np.all(f.amp2 == 0) and np.all(np.isnan(f.ratio))
    assert_array_equal(f.mu2, f.mu1)
    assert_array_equal(f.sigma2, f.sigma1)
    # Merged, the sum is close to one Gaussian with the mixture's mean and
    # variance and the same area (exact for separation 0).
    p = 1000.0 / 1800.0
    width = np.sqrt(9.0 + p * (1 - p) * separation**2)
    assert np.all(np.abs(f.amp1 - 1800 * 3.0 / width) < 5 * f.amp1_err + 1)
    assert np.all(np.abs(f.sigma1 - width) < 5 * f.sigma1_err + 0.01)
    assert np.all(np.abs(f.mu1 - (20.0 - separation / 2 + p * separation)) < 5 * f.mu1_err)
    assert np.all(np.abs(f.offset - 1000) < 5 * f.offset_err)
    assert_allclose(f.chi2_red, NOISE**2, rtol=0.6)


def test_all_nan_bin_is_failed(median_profiles):
    prof = median_profiles[:3].copy()
    prof[1] = np.nan
    prof[2, 4:] = np.nan  # 4 points: too few for any fit
    f = fit_median_profiles(prof)
    assert f.flag[0] == FitFlag.GOOD
    assert f.flag[1] == FitFlag.FAILED and f.n_points[1] == 0
    assert f.flag[2] == FitFlag.FAILED and f.n_points[2] == 4
    assert np.all(np.isnan(f.params[1:])) and np.all(np.isnan(f.errors[1:]))


def test_profile_with_nan_holes_still_fits(median_profiles, rng):
    prof = median_profiles[:10].copy()
    holes = rng.random(prof.shape) < 0.25
    holes[:, 24] = True  # the top of the main peak is missing
    prof[holes] = np.nan
    f = fit_median_profiles(prof)
    assert np.all(f.flag == FitFlag.GOOD)
    assert_array_equal(f.n_points, (~holes).sum(axis=1))
    assert np.all(np.abs((f.params - TRUE_VEC) / f.errors) < 5)


def test_flat_and_noise_profiles_do_not_raise(rng):
    prof = np.vstack([np.full(N_ROWS, 1000.0), rng.normal(1000, NOISE, N_ROWS)])
    f = fit_median_profiles(prof)
    assert np.all(f.flag == FitFlag.SINGLE)
    assert np.all(np.isfinite(f.params))
    assert np.all(f.amp1 < 5 * NOISE)


# -------------------------------------------------------------- final fits

def _final_profiles(reference, scale, rng, noise=NOISE):
    """Final-frame profiles: reference shape scaled, background removed."""
    p = reference.params.copy()
    p[:, [0, 3]] *= scale
    p[:, 6] = 0.0
    clean = double_gaussian(np.arange(N_ROWS)[None, :], *(p[:, [j]] for j in range(7)))
    return clean + rng.normal(0, noise, clean.shape)


def test_final_fit_holds_ratio_and_recovers_scale(median_fits, rng):
    ref = median_fits
    prof = _final_profiles(ref, 0.98, rng)
    f = fit_final_profiles(prof, ref)
    assert np.all(f.flag == FitFlag.GOOD)
    assert_allclose(f.amp1 / f.amp2, ref.ratio, rtol=1e-12)
    assert_allclose(f.ratio, ref.ratio, rtol=1e-12)
    assert_allclose(f.amp1_err / f.amp2_err, ref.ratio, rtol=1e-12)
    scale = f.amp2 / ref.amp2
    scale_err = f.amp2_err / ref.amp2
    assert np.all(np.abs(scale - 0.98) < 5 * scale_err)
    # Mean over 40 bins: 0.98 to within 5 x its standard error.
    assert abs(scale.mean() - 0.98) < 5 * scale_err.mean() / np.sqrt(len(scale))
    assert np.all(np.abs(f.offset) < 5 * f.offset_err)
    assert_array_equal(f.column_lo, ref.column_lo)


def test_final_fit_single_reference(rng):
    params = np.array([1800.0, 20.0, 3.0, 0.0, 20.0, 3.0, 1000.0])
    ref = fit_median_profiles(_profiles(params, 4, rng))
    assert np.all(ref.flag == FitFlag.SINGLE)
    f = fit_final_profiles(_final_profiles(ref, 1.02, rng), ref)
    assert np.all(f.flag == FitFlag.SINGLE)
    assert np.all(f.amp2 == 0) and np.all(np.isnan(f.ratio))
    assert np.all(np.abs(f.amp1 / ref.amp1 - 1.02) < 5 * f.amp1_err / ref.amp1)


def test_pathological_final_profile_falls_back(median_fits, rng):
    ref = median_fits
    prof = _final_profiles(ref, 1.0, rng)[:4]
    prof[0] = rng.normal(0, NOISE, N_ROWS)    # pure noise
    prof[1] = 3.0                             # constant
    prof[2] = rng.normal(0, 300, N_ROWS)      # huge noise
    prof[3, 5:] = np.nan                      # 5 points: too few for 6 parameters
    f = fit_final_profiles(prof, ProfileFits(**{k: v[:4] for k, v in
                                                dataclasses.asdict(ref).items()}))
    assert np.all(f.flag & FitFlag.FALLBACK)
    assert np.all(np.isfinite(f.params))
    # Fallback = reference shape with amplitude scale k >= 0 and an offset.
    assert_allclose(f.mu1, ref.mu1[:4])
    assert_allclose(f.sigma2, ref.sigma2[:4])
    pos = f.amp2 > 0
    assert_allclose(f.amp1[pos] / f.amp2[pos], ref.ratio[:4][pos], rtol=1e-12)
    assert np.all(f.amp1 >= 0) and np.all(f.amp2 >= 0)
    assert abs(f.offset[1] - 3.0) < 1e-9 and f.amp2[1] < 1e-9
    assert abs(f.amp2[0] / ref.amp2[0]) < 0.05  # noise: no trace


def test_final_fit_no_data_and_failed_reference(median_fits, rng):
    ref = ProfileFits(**{k: v[:3].copy() for k, v in dataclasses.asdict(median_fits).items()})
    ref.flag[2] = FitFlag.FAILED
    ref.amp1[2] = np.nan
    prof = _final_profiles(ref, 1.0, rng)
    prof[1] = np.nan
    f = fit_final_profiles(prof, ref)
    assert f.flag[0] == FitFlag.GOOD
    assert f.flag[1] == FitFlag.FAILED | FitFlag.FALLBACK
    assert_allclose(f.params[1, :6], ref.params[1, :6])
    assert f.offset[1] == 0.0
    assert f.flag[2] == FitFlag.FAILED and np.all(np.isnan(f.params[2]))


def test_final_fit_bin_count_mismatch(median_fits):
    with pytest.raises(ValueError):
        fit_final_profiles(np.zeros((3, N_ROWS)), median_fits)


# -------------------------------------------------------------- table, model

def test_table_roundtrip_through_fits(median_fits, tmp_path):
    f = median_fits
    f.flag[0] = FitFlag.SINGLE | FitFlag.FALLBACK
    t = f.to_table()
    assert "MU1_ERR" in t.colnames and "FLAG" in t.colnames
    assert t["AMP1"].unit == "adu" and t["SIGMA2_ERR"].unit == "pix"
    path = tmp_path / "fits.fits"
    t.write(path, format="fits")
    back = ProfileFits.from_table(Table.read(path))
    for fld in dataclasses.fields(ProfileFits):
        assert_array_equal(getattr(back, fld.name), getattr(f, fld.name), err_msg=fld.name)
    with pytest.raises(ValueError, match="FLAG"):
        ProfileFits.from_table(t[[c for c in t.colnames if c != "FLAG"]])


def test_model_frame_matches_hand_evaluation(rng):
    frame_shape = (N_ROWS, 60)
    params = np.array([TRUE_VEC, TRUE_VEC * [1.1, 1, 1, 0.9, 1, 1, 1],
                       [1800.0, 20, 3, 0, 20, 3, 1000]])
    prof = np.vstack([_profiles(p, 1, rng) for p in params])
    edges = bin_edges(frame_shape[1], 25)       # bins of 25, 25, 10 columns
    fits = fit_median_profiles(prof, edges=edges)
    m = model_frame(fits, frame_shape)
    assert m.shape == frame_shape
    y = np.arange(N_ROWS)
    for b in range(3):
        expected = double_gaussian(y, *fits.params[b])
        assert_allclose(m[:, edges[b]:edges[b + 1]],
                        np.repeat(expected[:, None], edges[b + 1] - edges[b], axis=1))
    wider = model_frame(fits, (N_ROWS, 70))
    assert np.all(np.isnan(wider[:, 60:])) and np.all(np.isfinite(wider[:, :60]))


def test_model_frame_needs_column_ranges(median_fits):
    with pytest.raises(ValueError, match="edges"):
        model_frame(median_fits, (N_ROWS, 100))
