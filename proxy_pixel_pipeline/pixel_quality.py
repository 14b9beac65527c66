"""Which pixels can take part in proxy matching, judged from the dark frames.

A pixel is excluded, as a spectral pixel (it then gets no proxy) and as a
candidate proxy alike, when it is

* hot: its median over the darks lies more than ``hot_pixel_sigma`` robust
  standard deviations (1.4826 x MAD over all pixels) above the median pixel;
* short of data: fewer than ``min_valid_samples`` valid (not missing) darks;
* constant: the same value in every valid dark (a dead or saturated pixel,
  whose residuals say nothing about its noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PixelFlags", "FLAG_HOT", "FLAG_FEW_SAMPLES", "FLAG_CONSTANT", "assess_pixels",
           "centre_frames"]

FLAG_HOT = 1
FLAG_FEW_SAMPLES = 2
FLAG_CONSTANT = 4


@dataclass
class PixelFlags:
    """Per-pixel exclusion flags (bit OR of ``FLAG_*``) and valid dark counts."""

    flags: np.ndarray        # uint8, frame shape
    n_valid: np.ndarray      # int32, frame shape
    hot_threshold: float     # ADU, median dark level above which a pixel is hot

    @property
    def usable(self):
        """True where the pixel may be matched."""
        return self.flags == 0

    def counts(self, where=None) -> dict:
        """Number of pixels per exclusion reason (within ``where`` if given)."""
        f = self.flags if where is None else self.flags[where]
        return {"hot": int(np.count_nonzero(f & FLAG_HOT)),
                "few_samples": int(np.count_nonzero(f & FLAG_FEW_SAMPLES)),
                "constant": int(np.count_nonzero(f & FLAG_CONSTANT))}


def assess_pixels(darks, hot_pixel_sigma=15.0, min_valid_samples=10) -> PixelFlags:
    """Flag hot, under-sampled and constant pixels.

    Parameters
    ----------
    darks : ndarray, shape (n_darks, rows, columns)
        Dark frames in ADU, NaN = missing.
    hot_pixel_sigma : float
        Robust threshold in standard deviations of the per-pixel median dark
        level (typ. 15: dark current is log-normal, so smaller values flag
        its normal high tail).
    min_valid_samples : int
        Minimum number of valid darks per pixel (typ. 10).

    Returns
    -------
    PixelFlags
    """
    n_valid = np.count_nonzero(~np.isnan(darks), axis=0).astype(np.int32)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN pixels
            level = np.nanmedian(darks, axis=0)
            spread = np.nanmax(darks, axis=0) - np.nanmin(darks, axis=0)
    finite = level[np.isfinite(level)]
    centre = np.median(finite) if finite.size else np.nan
    sigma = 1.4826 * np.median(np.abs(finite - centre)) if finite.size else np.nan
    threshold = float(centre + hot_pixel_sigma * sigma)
    flags = np.zeros(darks.shape[1:], np.uint8)
    flags[level > threshold] |= FLAG_HOT
    flags[n_valid < min_valid_samples] |= FLAG_FEW_SAMPLES
    flags[(spread == 0) & (n_valid >= 2)] |= FLAG_CONSTANT
    return PixelFlags(flags, n_valid, threshold)


def centre_frames(darks) -> np.ndarray:
    """Subtract each dark frame's median level (returns a new float32 array).

    A per-frame constant cancels in every residual ``spectral - candidate``,
    so matching is unchanged, while the ~1000 ADU bias no longer eats the
    precision of the float32 matrix products.
    """
    level = np.nanmedian(darks.reshape(len(darks), -1), axis=1)
    level = np.nan_to_num(level)
    return (darks - level[:, None, None].astype(darks.dtype)).astype(np.float32)
