"""The smooth excess of a science frame over the darks, and what it does to the proxies.

A spectral pixel's proxies were matched to it over the darks, not placed
near it: they lie anywhere on the detector.  Light that is in a science frame
but not in the same place in the darks (scattered light whose level and
gradient change with the pointing, frame by frame) reaches the proxies at
another level than the spectral pixel, and the background takes the
difference: ``mean_k S(c_k) - S(p)``, the same sign over much of the trace,
so it adds up coherently in the white light.  Measured on the simulator's
real CUTE geometry (100 x 2048 pixels, 134 darks, scattered light of 100 e-
with 30 % gradients): 24 500 ADU per frame of white-light background error
(about 1 % of the flux), against 4600 ADU from the proxies' own noise.

A pixel's value in a science frame minus its median over the darks is, away
from the trace, a smooth field (the scattered light's change) plus a term in
proportion to the pixel's dark level (the frame's temperature differs from
the darks': dark current scales with itself).  :func:`fit_excess` fits both
to the non-spectral pixels of one frame (a polynomial in column and row plus
a slope in the dark level, outliers clipped).  They reach the background in
two ways:

- the smooth field: :func:`proxy_correction` gives each spectral pixel the
  field's difference between it and the mean of its proxies, to add to its
  background (the field's constant cancels there; its gradients count);
- the temperature term: a proxy's offset is the level difference between it
  and its pixel at the darks' temperatures, and that difference grows with
  the frame's dark current like the dark current itself, so stage 2 scales
  the offsets by :attr:`ExcessField.offset_scale` (``1 + t``).  The offsets
  are cross-fitted (measured on the darks the proxy was not chosen on); the
  difference of the two pixels' medians over all darks, which the field
  itself would give, holds the selection noise of the half each proxy was
  chosen on, and on the real geometry it tied a white-light error to the
  temperature (-0.95 correlated, 4900 ADU per frame without noise).

Against the truth (white-light background error per frame; scripts in
docs/unbiased_fluxes.md): 24 500 -> 5850 ADU on ``wasp189b`` with the field
alone, 4640 -> 3240 with the offsets scaled instead of the field's dark-level
term; 37 200 -> 5450 on a held-out set; a set whose trace is 7x brighter
than most candidates -0.33 -> -0.15 ADU per trace pixel (the temperature
law); where nothing changes across the frame it changes nothing.

Nothing here imports MPI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .robust import MAD_TO_SIGMA

__all__ = ["ExcessField", "fit_excess", "proxy_correction", "EXCESS_CLIP_SIGMA"]

#: Residuals beyond this many robust sigmas leave the fit (cosmic rays, stray light
#: near the trace, pixels whose dark law differs).
EXCESS_CLIP_SIGMA = 4.0


@dataclass(frozen=True)
class ExcessField:
    """A frame's fitted excess over the darks' median: ``c0 + t (d - d0) + sum c_ij u^i v^j``.

    ``u``, ``v``: column and row scaled to -0.5 .. 0.5 over the frame; ``d``: a
    pixel's median dark level (ADU), ``d0`` its median over the fitted pixels.
    """

    coefficients: np.ndarray      # [c0, t, c10, c01, c20, c11, c02, ...] (ADU)
    errors: np.ndarray            # their one-sigma errors (ADU)
    order: int
    shape: tuple
    dark_centre: float            # d0, ADU
    n_used: int                   # pixels left after clipping
    scatter: float                # their robust sigma, ADU

    @property
    def shrunk(self):
        """The coefficients, each times ``max(0, 1 - (error / coefficient)^2)``.

        A coefficient within its noise is shrunk towards 0 (positive-part
        James-Stein per term): where the frame's excess is not what the model
        says (pixels whose temperature law is not in proportion to their dark
        level, say), the fit's terms are noise and applying them would only
        move each pixel's background by the difference at its proxies' places.
        A significant term (scattered light: tens of sigma) is kept whole.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            z2 = (self.coefficients / self.errors) ** 2
        return self.coefficients * np.where(z2 > 1.0, 1.0 - 1.0 / z2, 0.0)

    def spatial(self, rows, columns):
        """The field's smooth part (shrunk, without its constant and dark-level term) at
        pixels (``rows``, ``columns``), ADU: what scattered light adds there."""
        design = _design(rows, columns, np.zeros(np.shape(rows)), self.shape, self.order)
        return design[:, 2:] @ self.shrunk[2:]

    @property
    def offset_scale(self):
        """Factor on the proxies' offsets in this frame, ``1 + t`` (:attr:`temperature_slope`):
        a level difference measured on the darks grows with the frame's dark current."""
        return 1.0 + self.temperature_slope

    def __call__(self, rows, columns, dark_level):
        """The field (shrunk, :attr:`shrunk`) at pixels (``rows``, ``columns``) of median dark
        level ``dark_level`` (ADU)."""
        return _design(rows, columns, dark_level - self.dark_centre, self.shape,
                       self.order) @ self.shrunk

    @property
    def temperature_slope(self):
        """``t``: the excess per ADU of dark level (the frame's dark current over the darks' - 1),
        as applied (shrunk)."""
        return float(self.shrunk[1])

    @property
    def gradients(self):
        """The linear part of the field as applied (shrunk), ADU from one edge to the other
        along columns and rows."""
        return float(self.shrunk[2 + _terms(self.order).index((1, 0))]), \
            float(self.shrunk[2 + _terms(self.order).index((0, 1))])


def _terms(order):
    """Powers (i, j) of u^i v^j with 1 <= i + j <= order, in a fixed order."""
    return [(i, n - i) for n in range(1, order + 1) for i in range(n, -1, -1)]


def _design(rows, columns, dark, shape, order):
    u = np.asarray(columns, float) / max(shape[1] - 1, 1) - 0.5
    v = np.asarray(rows, float) / max(shape[0] - 1, 1) - 0.5
    cols = [np.ones_like(u), np.asarray(dark, float)]
    cols += [u ** i * v ** j for i, j in _terms(order)]
    return np.column_stack(cols)


def fit_excess(science, dark_median, usable, order=1, clip_sigma=EXCESS_CLIP_SIGMA,
               iterations=5):
    """Fit one science frame's smooth excess over the darks' median.

    Parameters
    ----------
    science : ndarray, shape (rows, columns)
        The science frame, ADU (NaN = missing).
    dark_median : ndarray, shape (rows, columns)
        Each pixel's median over the darks, ADU (stage 1's ``DARKMED``).
    usable : ndarray of bool, shape (rows, columns)
        Pixels to fit: not spectral, not hot, not excluded (stage 1's
        ``SPECMASK`` and ``PIXFLAGS``); NaN values are left out as well.
    order : int
        Polynomial order in column and row, 1 to 3 (typ. 1: scattered light
        with a gradient; 2-3 bend it, at more noise).
    clip_sigma : float
        Residuals beyond this many robust sigmas are left out, refitted
        ``iterations`` times.

    Returns
    -------
    ExcessField or None
        None when fewer pixels than ten per coefficient are left.
    """
    rows, columns = np.nonzero(usable)
    excess = science[rows, columns] - dark_median[rows, columns]
    good = np.isfinite(excess)
    rows, columns, excess = rows[good], columns[good], excess[good].astype(float)
    dark = dark_median[rows, columns].astype(float)
    n_coef = 2 + len(_terms(order))
    if len(excess) < 10 * n_coef:
        return None
    centre = float(np.median(dark))
    design = _design(rows, columns, dark - centre, science.shape, order)
    use = np.ones(len(excess), bool)
    for _ in range(iterations + 1):
        coef = np.linalg.lstsq(design[use], excess[use], rcond=None)[0]
        residual = excess - design @ coef
        sigma = MAD_TO_SIGMA * np.median(np.abs(residual[use]))
        new = np.abs(residual) <= clip_sigma * max(sigma, 1e-12)
        if np.array_equal(new, use) or new.sum() < 10 * n_coef:
            break
        use = new
    covariance = np.linalg.pinv(design[use].T @ design[use]) * sigma ** 2
    return ExcessField(coef, np.sqrt(np.diag(covariance)), order, tuple(science.shape), centre,
                       int(use.sum()), float(sigma))


def proxy_correction(field, spectral_yx, proxy_yx, valid):
    """What to add to each spectral pixel's background: the smooth field at it minus at its
    proxies (:meth:`ExcessField.spatial`; the dark-level term goes into the offsets,
    :attr:`ExcessField.offset_scale`).

    Parameters
    ----------
    field : ExcessField
    spectral_yx : ndarray of int, shape (n, 2)
    proxy_yx : ndarray of int, shape (n, K, 2)
        -1 where there is no proxy.
    valid : ndarray of bool, shape (n, K)
        The proxies whose value made the background in this frame.

    Returns
    -------
    ndarray, shape (n,)
        ADU; 0 where no proxy is valid.
    """
    at_pixel = field.spatial(spectral_yx[:, 0], spectral_yx[:, 1])
    py = np.where(valid, proxy_yx[..., 0], 0).ravel()
    px = np.where(valid, proxy_yx[..., 1], 0).ravel()
    at_proxies = field.spatial(py, px).reshape(valid.shape)
    n = valid.sum(axis=1)
    mean = np.where(valid, at_proxies, 0.0).sum(axis=1) / np.maximum(n, 1)
    return np.where(n > 0, at_pixel - mean, 0.0)
