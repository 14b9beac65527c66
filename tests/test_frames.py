"""Background and Final Frames on hand-made cases with exact answers."""

import numpy as np

from proxy_pixel_pipeline.frames import background_frame, combine_proxies, final_frame


def test_background_takes_proxy_values_and_final_subtracts():
    science = np.arange(20, dtype=np.float32).reshape(4, 5)
    spectral = np.array([[1, 1], [1, 2], [2, 3]])
    proxy = np.array([[[0, 0]], [[3, 4]], [[-1, -1]]])     # last pixel: no proxy
    background, _ = background_frame(science, spectral, proxy)
    expected = np.full((4, 5), np.nan, np.float32)
    expected[1, 1], expected[1, 2] = science[0, 0], science[3, 4]
    np.testing.assert_array_equal(background, expected)
    final = final_frame(science, background)
    np.testing.assert_array_equal(final[1, 1], science[1, 1] - science[0, 0])
    np.testing.assert_array_equal(final[1, 2], science[1, 2] - science[3, 4])
    assert np.isnan(final[2, 3]) and np.isnan(final[0, 0])


def test_missing_proxy_value_leaves_pixel_empty():
    science = np.ones((3, 3), np.float32)
    science[0, 0] = np.nan
    background, _ = background_frame(science, np.array([[1, 1]]), np.array([[[0, 0]]]))
    assert np.isnan(background[1, 1])


def test_combination_ignores_a_cosmic_ray_hit_proxy():
    rng = np.random.default_rng(1)
    values = 100 + rng.normal(0, 1, (500, 16))
    clean = {m: combine_proxies(values, m)[0] for m in ("median", "clipped_mean")}
    values[:, 3] += 800                                      # one proxy hit in every pixel
    for method in ("median", "clipped_mean"):
        hit, scatter = combine_proxies(values, method)
        np.testing.assert_allclose(hit, clean[method], atol=4 / np.sqrt(16))
        np.testing.assert_allclose(np.median(scatter), 1.0, rtol=0.2)
