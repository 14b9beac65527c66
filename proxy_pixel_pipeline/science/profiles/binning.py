"""Column bins of a frame and their median cross-dispersion profiles.

Columns are grouped in bins (25 by default) and each row replaced by its
NaN-ignoring median over the bin's columns, which beats the noise and
keeps the number of fits small.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bin_edges", "binned_profiles"]


def bin_edges(n_columns, bin_width):
    """Column edges of bins of ``bin_width`` columns, keeping a partial last bin.

    Parameters
    ----------
    n_columns : int
        Number of columns of the frame (CUTE: 2048).
    bin_width : int
        Columns per bin (pipeline default 25).

    Returns
    -------
    ndarray of int, shape (n_bins + 1,)
        ``[0, w, 2w, ..., n_columns]``; the last bin may be narrower
        (2048 columns / 25 gives 82 bins, the last 23 wide).
    """
    n_columns = int(n_columns)
    bin_width = int(bin_width)
    if n_columns < 1 or bin_width < 1:
        raise ValueError(f"n_columns and bin_width must be >= 1, got {n_columns}, {bin_width}")
    return np.append(np.arange(0, n_columns, bin_width), n_columns).astype(np.int64)


def _nanmedian_last_axis(a):
    """NaN-ignoring median along the last axis, NaN where all are NaN.

    Sorting puts NaN last, so the median of the ``k`` finite values is read
    at positions ``(k-1)//2`` and ``k//2``: much faster than ``np.nanmedian``
    on many short rows and silent on all-NaN slices.
    """
    s = np.sort(a, axis=-1)
    k = np.isfinite(s).sum(axis=-1)
    lo = np.clip((k - 1) // 2, 0, None)[..., None]
    hi = np.clip(k // 2, 0, a.shape[-1] - 1)[..., None]
    med = 0.5 * (np.take_along_axis(s, lo, -1) + np.take_along_axis(s, hi, -1))[..., 0]
    med[k == 0] = np.nan
    return med


def binned_profiles(frame, bin_width):
    """Median cross-dispersion profile of each bin of columns.

    Parameters
    ----------
    frame : array_like, shape (n_rows, n_columns)
        Image in ADU, rows = cross-dispersion, columns = dispersion; NaN (and
        other non-finite values) mark empty pixels and are ignored.
    bin_width : int
        Columns per bin (pipeline default 25).

    Returns
    -------
    edges : ndarray of int, shape (n_bins + 1,)
        Column edges, see :func:`bin_edges`.
    profiles : ndarray, shape (n_bins, n_rows)
        ``profiles[b, r]`` = median over the bin's columns of row ``r``;
        NaN where the row has no finite pixel in the bin.
    """
    frame = np.asarray(frame, dtype=float)
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2D, got shape {frame.shape}")
    n_rows, n_columns = frame.shape
    edges = bin_edges(n_columns, bin_width)
    n_bins = len(edges) - 1
    # Pad the partial last bin with NaN so all bins reshape to one cube.
    padded = np.full((n_rows, n_bins * int(bin_width)), np.nan)
    padded[:, :n_columns] = np.where(np.isfinite(frame), frame, np.nan)
    cube = padded.reshape(n_rows, n_bins, int(bin_width))
    return edges, np.ascontiguousarray(_nanmedian_last_axis(cube).T)
