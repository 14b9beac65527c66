"""Background and Final Frames on hand-made cases with exact answers."""

import numpy as np

from proxy_pixel_pipeline.science.background import background_frame, combine_proxies, final_frame


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
        hit, spread, used = combine_proxies(values, method)
        np.testing.assert_allclose(hit, clean[method], atol=4 / np.sqrt(16))
        # The hit proxy is left out of the spread (unit noise) and of the count.
        np.testing.assert_allclose(np.median(spread), 1.0, rtol=0.2)
        assert np.median(used) == 15


def test_background_error_is_the_standard_error_of_the_combination():
    rng = np.random.default_rng(2)
    n, k = 20000, 16
    science = rng.normal(100.0, 2.0, (n, k + 1)).astype(np.float64)
    spectral = np.column_stack([np.arange(n), np.full(n, k)])
    proxy = np.stack(np.broadcast_arrays(np.arange(n)[:, None], np.arange(k)[None, :]), -1)
    for method, efficiency in (("clipped_mean", 1.0), ("median", np.pi / 2)):
        background, error = background_frame(science, spectral, proxy, method)
        actual = background[spectral[:, 0], spectral[:, 1]] - 100.0
        # Without a level term the error is the combination's: 2 / 4 (x sqrt(pi/2)); clipping
        # at 3 sigma estimated from 16 values (MAD) costs the clipped mean ~5 % of efficiency.
        np.testing.assert_allclose(np.std(actual), 2.0 * np.sqrt(efficiency / k), rtol=0.08)
        rms_error = np.sqrt(np.mean(error[spectral[:, 0], spectral[:, 1]] ** 2))
        np.testing.assert_allclose(rms_error, np.std(actual), rtol=0.1)
        # The matched level over N darks adds (pi/2)(1 + 1/K)/N of the pixel's variance.
        _, with_level = background_frame(science, spectral, proxy, method,
                                         n_darks=np.full(n, 40.0), level_bias=np.full(n, 0.3))
        expected = np.hypot(2.0 * np.sqrt(efficiency / k + np.pi / 2 * (1 + 1 / k) / 40), 0.3)
        rms_error = np.sqrt(np.mean(with_level[spectral[:, 0], spectral[:, 1]] ** 2))
        np.testing.assert_allclose(rms_error, expected, rtol=0.1)


def test_background_error_never_below_one_pixels_read_noise():
    science = np.full((1, 5), 1000.0)                # four proxies that agree exactly
    spectral = np.array([[0, 4]])
    proxy = np.array([[[0, 0], [0, 1], [0, 2], [0, 3]]])
    _, error = background_frame(science, spectral, proxy, "clipped_mean", noise_floor=2.0)
    np.testing.assert_allclose(error[0, 4], 2.0 / np.sqrt(4))
