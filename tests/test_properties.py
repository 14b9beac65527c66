"""Property-based tests (hypothesis) of the config loader and of stage 2."""

import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from proxy_pixel_pipeline.runtime.config import config_from_dict
from proxy_pixel_pipeline.errors import PipelineError
from proxy_pixel_pipeline.science.background import background_frame, final_frame

REQUIRED = {"dark_frames": "d/*.fits", "science_frames": "s/*.fits", "spectral_mask": "m.fits",
            "output_dir": "out", "proxy_method": "median"}
KEYS = ["bin_width", "gain", "proxy_count", "proxy_method", "missing_value", "fill_negative",
        "median_mode", "hot_pixel_sigma", "typo_key", "output_dir"]
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 100), st.floats(allow_nan=True),
                   st.text(max_size=8), st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4))
def test_config_loader_accepts_or_names_the_key(changes):
    raw = {**REQUIRED, **changes}
    try:
        cfg = config_from_dict(raw, base="/tmp/base", source="c.yaml")
    except PipelineError as exc:
        message = str(exc)
        assert message.startswith("c.yaml") and "\n" not in message
        assert any(f"'{key}'" in message for key in changes), message
    else:
        for key, value in changes.items():
            if key not in ("output_dir", "missing_value"):
                assert getattr(cfg, key) == value


@st.composite
def frames_and_matches(draw):
    ny, nx = draw(st.integers(2, 8)), draw(st.integers(2, 8))
    science = draw(arrays(np.float32, (ny, nx), elements=st.floats(-1e4, 1e4, width=32)))
    science[draw(arrays(bool, (ny, nx)))] = np.nan
    mask = draw(arrays(bool, (ny, nx)))
    spectral = np.argwhere(mask)
    k = draw(st.integers(1, 3))
    candidates = np.argwhere(~mask)
    if len(candidates) == 0:
        proxy = np.full((len(spectral), k, 2), -1)
    else:
        pick = draw(arrays(np.int64, (len(spectral), k), elements=st.integers(-1, len(candidates) - 1)))
        proxy = np.where(pick[..., None] >= 0, candidates[np.maximum(pick, 0)], -1)
    return science, mask, spectral, proxy


@settings(max_examples=300, deadline=None)
@given(frames_and_matches(), st.sampled_from(["median", "clipped_mean"]))
def test_background_and_final_frames(case, combine):
    science, mask, spectral, proxy = case
    background, _ = background_frame(science, spectral, proxy, combine)
    assert np.isnan(background[~mask]).all()
    values = np.where(proxy[..., 0] >= 0, science[proxy[..., 0], proxy[..., 1]], np.nan)
    got = background[spectral[:, 0], spectral[:, 1]] if len(spectral) else np.zeros(0)
    has_value = (~np.isnan(values)).any(axis=1)
    np.testing.assert_array_equal(np.isnan(got), ~has_value)
    lo = np.nanmin(np.where(has_value[:, None], values, 0), axis=1, initial=np.inf)
    hi = np.nanmax(np.where(has_value[:, None], values, 0), axis=1, initial=-np.inf)
    ok = has_value
    assert np.all(got[ok] >= lo[ok] - 1e-3) and np.all(got[ok] <= hi[ok] + 1e-3)
    if proxy.shape[1] == 1:
        np.testing.assert_array_equal(got, values[:, 0])
    final = final_frame(science, background)
    np.testing.assert_array_equal(final, (science - background).astype(np.float32))
