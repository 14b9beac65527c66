"""The pipeline's bit flags, each an :class:`enum.IntFlag` declared once.

Header strings that document them (``FLAGDOC``) come from :func:`flagdoc`, so
that what a file says about its flags cannot drift from the code that sets
them.
"""

from __future__ import annotations

import enum

__all__ = ["PixelFlag", "FitFlag", "DQFlag", "SpectrumFlag", "flagdoc", "flag_names"]


class PixelFlag(enum.IntFlag):
    """Why a pixel takes no part in proxy matching (stage 1's ``FLAG``/``PIXFLAGS``).

    HOT (1)
        Median dark level above the hot threshold (``hot_pixel_sigma``).
    FEW_SAMPLES (2)
        Fewer than ``min_valid_samples`` valid (not missing) darks.
    CONSTANT (4)
        The same value in every valid dark (dead or saturated).
    NO_PROXY (8)
        A usable spectral pixel for which no candidate qualified.
    EXCLUDED (16)
        Listed in ``exclude_pixels`` (the original code's excluded pixels).
    NEAR_MASK (32)
        A non-spectral pixel within ``candidate_margin`` pixels of the
        spectral mask: a smeared trace's starlight reaches it in some science
        frames, so it serves as no proxy.
    """

    HOT = 1
    FEW_SAMPLES = 2
    CONSTANT = 4
    NO_PROXY = 8
    EXCLUDED = 16
    NEAR_MASK = 32


class FitFlag(enum.IntFlag):
    """Bit flags of a bin's profile fit (values combine with ``|``).

    GOOD (0)
        Double-Gaussian fit accepted.
    SINGLE (1)
        Merged peaks: a single Gaussian is used (``amp2 = 0``,
        ``mu2 = mu1``, ``sigma2 = sigma1``, ``ratio`` NaN).
    FALLBACK (2)
        Final-frame fit failed or was unphysical: the parameters are the
        reference (Median Frame) fit, scaled to the data by linear least
        squares (one scale factor and one offset).
    FAILED (4)
        No usable data (all NaN or too few points).  Median-frame fits are
        then NaN; final-frame fits carry the unscaled reference with
        ``offset = 0`` (flag ``FAILED | FALLBACK``) so the bin can still be
        infilled, or NaN if the reference itself failed.
    """

    GOOD = 0
    SINGLE = 1
    FALLBACK = 2
    FAILED = 4


def flagdoc(flag_type, members=None) -> str:
    """``"1 HOT, 2 FEW_SAMPLES, ..."``: the nonzero bits of ``flag_type`` for a header.

    Parameters
    ----------
    flag_type : type of enum.IntFlag
    members : iterable of flag_type, optional
        Only these bits (default all).
    """
    chosen = list(flag_type) if members is None else list(members)
    return ", ".join(f"{int(f)} {f.name}" for f in chosen if int(f))


def flag_names(flag_type, value) -> str:
    """``"SINGLE|FALLBACK"``: the names of the bits set in ``value`` (empty for 0)."""
    return "|".join(f.name for f in flag_type if int(f) and int(value) & int(f))


class DQFlag(enum.IntFlag):
    """Data-quality bits of a stage-5 Final Frame pixel (extension ``DQ``).

    EMPTY_INPUT (1)
        The science frame had no value here (lost in the downlink).
    HOT (2)
        A hot pixel (stage 1): no background could be made for it.
    NO_PROXY (4)
        No proxy: constant, too few valid darks or no candidate qualified.
    INFILLED (8)
        The value is the stage-4 profile model's, not a measurement.
    COSMIC_TEMPORAL (16)
        Cosmic ray found along the pixel's time series.
    COSMIC_LACOSMIC (32)
        Cosmic ray found by L.A.Cosmic in the frame.
    PROXY_HIT (64)
        The background's proxy value in this frame was an outlier of the
        proxy's own series (a cosmic ray on the proxy) and was dropped.
    COSMIC_GROWN (128)
        Next to a cosmic ray (``cosmic_grow``): part of its charge may lie
        here below any threshold, so the value is the series' prediction.
        Not INFILLED: stage 6 keeps it (on dense cosmic rays, leaving these
        10 % of the trace's pixels out raised the white-light scatter 17 %
        and moved the flux -0.1 %).
    """

    EMPTY_INPUT = 1
    HOT = 2
    NO_PROXY = 4
    INFILLED = 8
    COSMIC_TEMPORAL = 16
    COSMIC_LACOSMIC = 32
    PROXY_HIT = 64
    COSMIC_GROWN = 128


class SpectrumFlag(enum.IntFlag):
    """Data-quality bits of one extracted column (stage 6's spectra, column ``DQ``).

    LOW_WEIGHT (1)
        The usable pixels hold less than ``extract_min_weight`` of the
        column's profile: its optimal flux rests on few pixels.
    REJECTED (2)
        At least one pixel was rejected as an outlier of the profile fit.
    NO_DATA (4)
        No usable pixel with profile weight: the optimal flux is NaN.
    INFILLED (8)
        The box sum includes pixels stage 5 infilled from its model or
        cleaned of a cosmic ray.
    """

    LOW_WEIGHT = 1
    REJECTED = 2
    NO_DATA = 4
    INFILLED = 8
