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

import warnings
from dataclasses import dataclass

import numpy as np

from ..flags import PixelFlag
from .robust import MAD_TO_SIGMA

__all__ = ["PixelFlags", "assess_pixels", "centre_frames"]


@dataclass
class PixelFlags:
    """Per-pixel exclusion flags (bit OR of :class:`~.flags.PixelFlag`) and valid dark counts."""

    flags: np.ndarray        # uint8, frame shape
    n_valid: np.ndarray      # int32, frame shape
    hot_threshold: float     # ADU, median dark level above which a pixel is hot
    level: np.ndarray = None  # float32, frame shape: each pixel's median over the darks, ADU

    @property
    def usable(self):
        """True where the pixel may be matched."""
        return self.flags == 0

    def counts(self, where=None) -> dict:
        """Number of pixels per exclusion reason (within ``where`` if given)."""
        f = self.flags if where is None else self.flags[where]
        return {"hot": int(np.count_nonzero(f & PixelFlag.HOT)),
                "few_samples": int(np.count_nonzero(f & PixelFlag.FEW_SAMPLES)),
                "constant": int(np.count_nonzero(f & PixelFlag.CONSTANT)),
                "excluded": int(np.count_nonzero(f & PixelFlag.EXCLUDED))}


def assess_pixels(darks, hot_pixel_sigma=15.0, min_valid_samples=10, strip=32) -> PixelFlags:
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
    strip : int
        Rows per pass: the per-pixel statistics' temporaries stay at
        ``n_darks x strip x columns`` values instead of a copy of the stack.

    Returns
    -------
    PixelFlags
    """
    shape = darks.shape[1:]
    n_valid = np.empty(shape, np.int32)
    level = np.empty(shape, np.float64)
    spread = np.empty(shape, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN pixels
        for r0 in range(0, shape[0], strip):
            rows = slice(r0, r0 + strip)
            part = darks[:, rows]
            n_valid[rows] = np.count_nonzero(~np.isnan(part), axis=0)
            level[rows] = np.nanmedian(part, axis=0)
            spread[rows] = np.nanmax(part, axis=0) - np.nanmin(part, axis=0)
    finite = level[np.isfinite(level)]
    centre = np.median(finite) if finite.size else np.nan
    sigma = MAD_TO_SIGMA * np.median(np.abs(finite - centre)) if finite.size else np.nan
    threshold = float(centre + hot_pixel_sigma * sigma)
    flags = np.zeros(darks.shape[1:], np.uint8)
    flags[level > threshold] |= PixelFlag.HOT.value
    flags[n_valid < min_valid_samples] |= PixelFlag.FEW_SAMPLES.value
    flags[(spread == 0) & (n_valid >= 2)] |= PixelFlag.CONSTANT.value
    return PixelFlags(flags, n_valid, threshold, level.astype(np.float32))


def near_mask(mask, margin):
    """Non-spectral pixels within ``margin`` pixels (Euclidean, centre to centre) of the mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (rows, columns)
        The spectral mask.
    margin : float
        Pixels, typ. a few: how far a smeared trace's wings reach beyond the
        mask; 0 = none.

    Returns
    -------
    ndarray of bool, shape (rows, columns)
    """
    if margin <= 0 or not mask.any():
        return np.zeros(mask.shape, bool)
    from scipy.ndimage import distance_transform_edt

    return ~mask & (distance_transform_edt(~mask) <= margin)


def centre_frames(darks) -> np.ndarray:
    """Subtract each dark frame's median level, in place; returns ``darks``.

    A per-frame constant cancels in every residual ``spectral - candidate``,
    so matching is unchanged, while the ~1000 ADU bias no longer eats the
    precision of the float32 matrix products.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # an all-missing frame
        for frame in darks:                               # one frame's temporaries at a time
            frame -= np.nan_to_num(np.nanmedian(frame)).astype(darks.dtype)
    return darks
