"""A spatial profile that follows each frame: the series' template, moved and smeared.

The optimal extraction (:func:`.extraction.optimal_extract`) is unbiased only
if its profile ``P`` is each column's true share of the flux at every usable
pixel.  A profile narrower than the frame's trace biases the flux low, a
wider one biases it high, to first order (half the relative width error for
a background-limited Gaussian).  Pointing jitter moves CUTE's trace and
smears it from frame to frame; one template for the whole series cannot
follow that, and each frame's own stage-4 model carries the noise of one
frame's fit.  Here the template keeps the low noise of the whole series and
a few numbers per frame make it follow the frame:

* the trace offset, rows, a straight line in the column (``offset`` at the
  middle column and ``tilt``, its change from the middle to the last column);
* the smear: a Gaussian of (signed) variance ``v(x) = c0 + c1 x + c2 x**2``
  rows**2 (``x`` from -1 at the first column to 1 at the last) that widens
  the template (``v > 0``) or narrows it (``v < 0``, a deconvolution whose
  gain is capped at ``cap`` per Fourier mode).  A constant ``v`` is what
  pointing jitter does (each peak's variance grows by the smear's, the peaks'
  separation stays); a ``v`` that follows the template's own width squared
  is a change of focus: the quadratic covers both.

:func:`fit_trace_shape` finds them for every frame by weighted least squares
of its usable pixels against ``flux(column) x moved and smeared template``
(Gauss-Newton, each column's flux solved exactly at every step), which uses
every column at once: a frame's offset and width come out far more precisely
than any column's.  They are also what a systematics model of the light
curves regresses on (:attr:`TraceShape.offset`, :attr:`TraceShape.width`).
The width fitted to a frame's noise adds noise to its flux (flux and width
are correlated in the extraction), so :func:`shrink_smear` pulls each frame's
smear towards the series' mean by the share of its spread that the fit's own
errors explain: a series whose width does not change gets the fixed template
(no extra noise), one whose width changes keeps its frames' widths.

Moves and smears are applied in Fourier space along the rows (a phase and a
Gaussian factor): exact for a band-limited profile, with none of the
widening that linear interpolation adds (up to a quarter of a pixel's
variance).  :func:`series_template` makes the template from frames aligned by
their own offsets, divided by their flux, median-combined, with the pixels
that are never usable (never downlinked, hot, excluded) taken from stage 5's
infilled values, so that they keep their share of the column's flux
(:func:`.extraction.build_template`).  When the width changes beyond the
noise the template is made from the narrowest third of the frames, so that
most frames need a widening, not a narrowing.  :func:`follow_frames` chains
it all; :func:`frame_profile` gives one frame's profile.

Vectorised over pixels and columns; only frames are looped.  No MPI here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .extraction import build_template

__all__ = ["TraceShape", "TemplateWarp", "profile_width", "shift_columns", "fit_trace_shape",
           "shrink_smear", "series_template", "follow_frames", "frame_profile"]

#: Parameters per frame: offset, tilt (rows) and the smear's c0, c1, c2 (rows**2).
N_PARAMS = 5


@dataclass
class TraceShape:
    """Each frame's trace position and smear against a template.

    Attributes
    ----------
    offset : ndarray, shape (n_frames,)
        Rows by which the frame's trace lies above the template's at the
        middle column (positive: towards higher rows).
    tilt : ndarray, shape (n_frames,)
        Change of that offset from the middle column to the last, rows.
    smear : ndarray, shape (n_frames, 3)
        ``c0, c1, c2`` of the smear variance ``v(x) = c0 + c1 x + c2 x**2``,
        rows**2 (``x`` from -1 to 1 across the columns; negative: narrower
        than the template).
    width : ndarray, shape (n_frames,)
        The frame's trace width, rows: ``sqrt(w_T**2 + mean v)`` with ``w_T``
        the template's :func:`profile_width` (variances add under a smear).
    chi2 : ndarray, shape (n_frames,)
        Reduced chi-squared of the fit (weights ``1 / err**2``).
    cov : ndarray, shape (n_frames, 5, 5)
        Covariance of (offset, tilt, c0, c1, c2), scaled by ``chi2``.
    template_width : float
        ``w_T``, rows.
    shrink : ndarray, shape (3,)
        Factor by which :func:`shrink_smear` kept each smear coefficient's
        spread about the series' mean (1 = all of it; ones before shrinking).
    """

    offset: np.ndarray
    tilt: np.ndarray
    smear: np.ndarray
    width: np.ndarray
    chi2: np.ndarray
    cov: np.ndarray
    template_width: float
    shrink: np.ndarray = field(default_factory=lambda: np.ones(3))

    def mean_smear(self):
        """Each frame's smear variance averaged over the columns (rows**2)."""
        return self.smear[:, 0] + self.smear[:, 2] / 3.0


def profile_width(profile, region):
    """Mean over columns, weighted by the profile's sum, of its rms width about its centroid.

    Parameters
    ----------
    profile : ndarray, shape (n_rows, n_columns)
    region : ndarray of bool, same shape

    Returns
    -------
    float
        Rows (NaN for an empty profile).
    """
    p = np.where(region, np.maximum(np.nan_to_num(profile), 0.0), 0.0)
    total = p.sum(axis=0)
    ok = total > 0
    if not ok.any():
        return float("nan")
    rows = np.arange(p.shape[0], dtype=float)[:, None]
    centre = (p * rows).sum(axis=0)[ok] / total[ok]
    var = (p[:, ok] * (rows - centre) ** 2).sum(axis=0) / total[ok]
    return float(np.average(np.sqrt(var), weights=total[ok]))


def _columns_x(n_columns):
    """Column coordinate from -1 (first) to 1 (last)."""
    return np.linspace(-1.0, 1.0, n_columns) if n_columns > 1 else np.zeros(1)


def _row_window(region, margin=4):
    """Rows holding the aperture, with a margin."""
    held = np.flatnonzero(np.asarray(region).any(axis=1))
    if not len(held):
        return slice(0, 0)
    return slice(max(int(held.min()) - margin, 0), min(int(held.max()) + margin + 1,
                                                        region.shape[0]))


def _fft_length(n_rows, pad=16):
    return int(2 ** np.ceil(np.log2(n_rows + 2 * pad)))


def shift_columns(image, dy, widen=0.0):
    """``image`` moved by ``dy`` rows (a number or one per column), by a Fourier phase, and
    widened by a Gaussian of variance ``widen`` (rows**2, >= 0; per column or one number).

    Parameters
    ----------
    image : ndarray, shape (n_rows, n_columns)
        Finite values (zero beyond the rows: padded).
    dy : float or ndarray, shape (n_columns,)
        Rows, positive towards higher rows.
    widen : float or ndarray, shape (n_columns,)
        Variance of the smoothing, rows**2 (negative values count as 0).

    Returns
    -------
    ndarray, same shape
    """
    image = np.asarray(image, float)
    n = image.shape[0]
    m = _fft_length(n)
    k = 2.0 * np.pi * np.fft.rfftfreq(m)[:, None]
    spectrum = np.fft.rfft(image, n=m, axis=0)
    v = np.maximum(np.atleast_1d(np.asarray(widen, float)), 0.0)[None, :]
    factor = np.exp(-1j * k * np.atleast_1d(dy)[None, :] - 0.5 * k * k * v)
    return np.fft.irfft(spectrum * factor, n=m, axis=0)[:n]


class TemplateWarp:
    """A template ready to be moved and smeared many times (its Fourier transform along rows).

    Parameters
    ----------
    template : ndarray, shape (n_rows, n_columns)
        Normalised profile (:func:`series_template`); zero outside ``region``.
    region : ndarray of bool, same shape
        The aperture.
    spill : bool
        Scale each moved and smeared column to the share of the template's light
        left inside the aperture (moving the trace towards an edge or smearing
        it carries light past the aperture: the optimal flux then counts it),
        instead of to the template's whole sum (the flux inside the aperture).
    cap : float
        Largest gain of a narrowing (``v < 0``) per Fourier mode: higher modes
        of a narrowing are not amplified further.  The template's own noise
        sits at high modes; amplified by a gain of 4 it made frames 0.5 px
        narrower than the template fit as barely narrower at all (rows**2
        -0.1 instead of -1.0 on a 3-pixel-wide trace); 1.5 recovered them
        (-1.03, -0.86, -0.54 against -1.03, -0.85, -0.62).  A well-sampled
        trace needs no more: its narrowing by 1 px**2 reaches a gain of 1.5
        only where the profile's own modes are 1e-3 of their peak.
    """

    def __init__(self, template, region, cap=1.5, spill=False):
        self.region = np.asarray(region, bool)
        self.rows = _row_window(self.region)
        self.window = self.region[self.rows]
        t = np.where(self.region, np.nan_to_num(np.asarray(template, float)), 0.0)[self.rows]
        self.n = t.shape[0]
        self.m = _fft_length(self.n)
        self.spectrum = np.fft.rfft(t, n=self.m, axis=0)
        self.k = 2.0 * np.pi * np.fft.rfftfreq(self.m)[:, None]
        self.target = t.sum(axis=0, keepdims=True)      # the template's own column sums
        self.spill = bool(spill)
        self.log_cap = float(np.log(cap))
        x = _columns_x(t.shape[1])
        self.basis_y = np.array([np.ones_like(x), x])
        self.basis_v = np.array([np.ones_like(x), x, x * x])
        self.width = profile_width(template, region)

    def profile(self, offset, smear, derivatives=False):
        """The moved and smeared template within the row window.

        ``P`` is made non-negative, zero outside the aperture and scaled to
        the template's sum over each column, or with ``spill`` to the share of
        it the move and smear leave inside the aperture (about 1: the template is
        normalised by its signed sum before its wings' negative noise is
        clipped; renormalising the clipped profile would take the wings'
        positive noise out of the core's share).  Its share covers the whole
        column: pixels that are never usable keep theirs.

        Parameters
        ----------
        offset : array_like, shape (2,)
            Offset and tilt, rows.
        smear : array_like, shape (3,)
            ``c0, c1, c2``, rows**2.
        derivatives : bool
            Also return ``dP/d(dy)`` and ``dP/dv`` per pixel (at fixed column
            scale: exact for the chi-squared's gradient once each column's
            flux is solved, the scale changing along ``P`` only).

        Returns
        -------
        ndarray, shape (n_window_rows, n_columns), or a tuple of three
        """
        dy = np.asarray(offset, float) @ self.basis_y
        v = np.asarray(smear, float) @ self.basis_v
        exponent = -0.5 * self.k * self.k * v[None, :]
        capped = exponent > self.log_cap
        factor = np.exp(-1j * self.k * dy[None, :] + np.minimum(exponent, self.log_cap))
        moved = self.spectrum * factor
        raw = np.fft.irfft(moved, n=self.m, axis=0)[:self.n]
        inside = self.window & (raw > 0)
        p = np.where(inside, raw, 0.0)
        total = p.sum(axis=0, keepdims=True)
        if not self.spill:
            kept = self.target
        else:                        # without a narrowing, ``raw`` is the spill's own warp
            kept = self._kept(dy, v, raw if np.all(v >= 0) else None)
        scale = np.where(total > 0, kept / np.where(total > 0, total, 1.0), 0.0)
        if not derivatives:
            return p * scale
        d_y = np.fft.irfft(moved * (-1j * self.k), n=self.m, axis=0)[:self.n]
        d_v = np.fft.irfft(moved * np.where(capped, 0.0, -0.5 * self.k * self.k), n=self.m,
                           axis=0)[:self.n]
        return (p * scale, np.where(inside, d_y, 0.0) * scale, np.where(inside, d_v, 0.0) * scale)

    def _kept(self, dy, v, moved=None):
        """Per column, the share of the template's light left inside the aperture by the move
        ``dy`` and the smear ``v`` (signed sums, as the template's own).  A narrowing (``v <
        0``) counts as none: the template cannot say what a narrower frame holds beyond its
        own aperture, and its capped modes ring past it (on frames narrower than the
        template it took 0.1 % of their flux).  ``moved``: the template already moved by
        ``dy`` and smeared by ``max(v, 0)`` within the window, if at hand."""
        if moved is None:
            factor = np.exp(-1j * self.k * dy[None, :]
                            - 0.5 * self.k * self.k * np.maximum(v, 0.0))
            moved = np.fft.irfft(self.spectrum * factor, n=self.m, axis=0)[:self.n]
        return np.minimum(np.where(self.window, moved, 0.0).sum(axis=0, keepdims=True),
                          self.target)

    def full(self, window_profile):
        """A window-sized profile placed in a full frame of zeros."""
        out = np.zeros(self.region.shape)
        out[self.rows] = window_profile
        return out


def fit_trace_shape(data, err, usable, template, region, offset=None, max_iter=30, clip=5.0,
                    tol=1e-4, cap=1.5):
    """Each frame's offset, tilt and smear against the template, by weighted least squares.

    Minimises ``sum w (D - F_x P_f)**2`` over the frame's usable pixels, with
    ``P_f`` the moved and smeared template (:class:`TemplateWarp`), ``F_x``
    each column's flux (solved exactly for every trial) and ``w = 1 /
    err**2``: Gauss-Newton on the five parameters.  Pixels more than ``clip``
    sigma off the model once the fit has converged are left out (a cosmic ray
    the earlier stages missed) and the fit goes on from there: clipped
    against a model still far from the frame (a frame 3 rows wider than the
    template, after one step), the pixels the noise pushed furthest were the
    ones left out, and such frames came out 0.65 rows**2 too narrow (-0.2 %
    flux) on synthetic frames.

    Parameters
    ----------
    data : ndarray, shape (n_frames, n_rows, n_columns)
        Background-subtracted frames, ADU.
    err : ndarray, same shape
        One-sigma error per pixel, ADU (stage 5's ``ERR``).
    usable : ndarray of bool, same shape
        Pixels to fit (:func:`.extraction.usable_pixels`).
    template : ndarray, shape (n_rows, n_columns)
    region : ndarray of bool, shape (n_rows, n_columns)
    offset : ndarray, shape (n_frames,), optional
        Starting offsets, rows (e.g. :func:`.extraction.trace_offsets`); 0 if not given.
    max_iter : int
        Most Gauss-Newton steps per frame (the clip comes after half of them at the
        latest).
    clip : float
        Outlier threshold, sigma.
    tol : float
        Convergence: every step below ``tol`` (rows, rows**2).
    cap : float
        See :class:`TemplateWarp`.

    Returns
    -------
    TraceShape
    """
    warp = TemplateWarp(template, region, cap)
    n_frames = len(data)
    params = np.zeros((n_frames, N_PARAMS))
    if offset is not None:
        params[:, 0] = offset
    chi2 = np.full(n_frames, np.nan)
    cov = np.full((n_frames, N_PARAMS, N_PARAMS), np.nan)
    basis = np.concatenate([warp.basis_y, warp.basis_v])            # (5, n_columns)
    is_v = np.array([False, False, True, True, True])
    rows = warp.rows
    for k in range(n_frames):
        d_k, e_k = np.asarray(data[k], float)[rows], np.asarray(err[k], float)[rows]
        ok = np.asarray(usable[k], bool)[rows] & warp.window & np.isfinite(d_k) \
            & np.isfinite(e_k) & (e_k > 0)
        if not ok.any():
            continue
        d = np.where(ok, d_k, 0.0)
        w = np.where(ok, 1.0 / np.where(ok, e_k, 1.0) ** 2, 0.0)
        normal = None
        clipped, close = clip <= 0, False
        for it in range(max_iter):
            p, jy, jv = warp.profile(params[k, :2], params[k, 2:], derivatives=True)
            den = (w * p * p).sum(axis=0)
            flux = np.where(den > 0, (w * p * d).sum(axis=0) / np.where(den > 0, den, 1.0), 0.0)
            resid = d - flux * p
            if not clipped and (close or it == max_iter // 2):
                # Drop outliers once the model is close: clipped against a model still far
                # from the frame, the pixels its noise pushes furthest are the ones left out.
                w = np.where(resid * resid * w > clip * clip, 0.0, w)
                clipped, close = True, False
            jy, jv = flux * jy, flux * jv
            # Per-column sums, then the column polynomials: a 5 x 5 normal system.
            per_col = {"yy": (w * jy * jy).sum(axis=0), "yv": (w * jy * jv).sum(axis=0),
                       "vv": (w * jv * jv).sum(axis=0)}
            pick = np.where(is_v[:, None] & is_v[None, :], 2, np.where(is_v[:, None] | is_v[None, :],
                                                                         1, 0))
            sums = np.stack([per_col["yy"], per_col["yv"], per_col["vv"]])
            normal = np.einsum("ix,jx,ijx->ij", basis, basis, sums[pick])
            rhs = np.concatenate([warp.basis_y @ (w * jy * resid).sum(axis=0),
                                  warp.basis_v @ (w * jv * resid).sum(axis=0)])
            step = np.linalg.lstsq(normal, rhs, rcond=1e-10)[0]
            limit = np.r_[1.0, 1.0, np.full(3, 1.0 + abs(params[k, 2]))]
            step = np.clip(step, -limit, limit)            # damped large steps
            params[k] += step
            close = bool(np.all(np.abs(step) < tol))
            if close and clipped:
                break
        p = warp.profile(params[k, :2], params[k, 2:])
        den = (w * p * p).sum(axis=0)
        flux = np.where(den > 0, (w * p * d).sum(axis=0) / np.where(den > 0, den, 1.0), 0.0)
        dof = max(int((w > 0).sum()) - int((den > 0).sum()) - N_PARAMS, 1)
        chi2[k] = float((w * (d - flux * p) ** 2).sum() / dof)
        if normal is not None:
            cov[k] = np.linalg.pinv(normal) * chi2[k]
    shape = TraceShape(offset=params[:, 0], tilt=params[:, 1], smear=params[:, 2:],
                       width=np.zeros(n_frames), chi2=chi2, cov=cov, template_width=warp.width)
    shape.width = np.sqrt(np.maximum(warp.width ** 2 + shape.mean_smear(), 0.0))
    return shape


def shrink_smear(shape):
    """Each smear coefficient pulled towards the series' mean by the share of its spread
    that the fit's errors explain.

    With ``s2`` the spread (variance over frames) of a coefficient and ``e2``
    the median of its fitted variance, each frame keeps ``max(0, 1 - e2 /
    s2)`` of its deviation from the series' mean (James-Stein): a width that
    does not change beyond the noise is the series' (no noise added to the
    fluxes), one that does is the frame's.

    Parameters
    ----------
    shape : TraceShape

    Returns
    -------
    TraceShape
        A copy with ``smear``, ``width`` and ``shrink`` replaced.
    """
    c = shape.smear
    mean = np.nanmean(c, axis=0)
    spread = np.nanvar(c, axis=0, ddof=1) if len(c) > 1 else np.zeros(3)
    noise = np.nanmedian(shape.cov[:, [2, 3, 4], [2, 3, 4]], axis=0) if len(c) else np.zeros(3)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = np.clip(1.0 - noise / spread, 0.0, 1.0)
    keep = np.where(np.isfinite(keep), keep, 0.0)
    smear = mean + keep * (c - mean)
    out = TraceShape(offset=shape.offset.copy(), tilt=shape.tilt.copy(), smear=smear,
                     width=shape.width.copy(), chi2=shape.chi2, cov=shape.cov,
                     template_width=shape.template_width, shrink=keep)
    out.width = np.sqrt(np.maximum(out.template_width ** 2 + out.mean_smear(), 0.0))
    return out


def series_template(data, usable, region, shape=None, frames=None, smooth=25, min_frames=1,
                    widen_to=None):
    """The series' template from its frames aligned by their own offsets.

    Each frame is moved back by its offset and tilt (:func:`shift_columns`),
    widened to the smear ``widen_to`` if given (a Gaussian of the variance it
    lacks, so that every frame combined has the same width: the median of
    profiles of different widths is not a smeared profile of any of them),
    divided by its total flux in the aperture (so a frame with less light
    weighs as much as any other), median-combined over the frames where the
    pixel was usable, normalised per column and smoothed along the columns
    (:func:`.extraction.build_template`).  A pixel usable in fewer than
    ``min_frames`` frames (never downlinked, hot, excluded) takes the median
    of the frames' own values there, which stage 5 infills from each
    frame's profile model: it keeps its share of the column's flux.

    Parameters
    ----------
    data : ndarray, shape (n_frames, n_rows, n_columns)
        Stage 5's frames (finite in ``region``: infilled).
    usable : ndarray of bool, same shape
    region : ndarray of bool, shape (n_rows, n_columns)
    shape : TraceShape, optional
        Each frame's offset and tilt (none: the frames as they lie).
    frames : sequence of int, optional
        The frames to combine (default all).
    smooth : int
        Columns of the smoothing along the dispersion axis (``profile_smooth``).
    min_frames : int
        Fewest usable frames for a pixel's median of measured values.
    widen_to : array_like, shape (3,), optional
        Smear coefficients (``shape``'s reference) to widen every combined
        frame to; frames wider than it somewhere are left as they are there.

    Returns
    -------
    ndarray, shape (n_rows, n_columns)
    """
    region = np.asarray(region, bool)
    rows = _row_window(region)
    window = region[rows]
    x = _columns_x(region.shape[1])
    frames = range(len(data)) if frames is None else frames
    aligned, valid = [], []
    for k in frames:
        image = np.where(window & np.isfinite(data[k][rows]), data[k][rows], 0.0)
        ok = (np.asarray(usable[k], bool)[rows] & window).astype(float)
        if shape is not None:
            dy = -(shape.offset[k] + shape.tilt[k] * x)
            widen = 0.0
            if widen_to is not None:
                basis = np.array([np.ones_like(x), x, x * x])
                widen = (np.asarray(widen_to, float) - shape.smear[k]) @ basis
            image, ok = shift_columns(image, dy, widen), shift_columns(ok, dy)
        total = np.where(window, image, 0.0).sum()
        aligned.append(image / total if total > 0 else np.full(image.shape, np.nan))
        valid.append(ok > 0.5)
    aligned, valid = np.array(aligned), np.array(valid)
    count = valid.sum(axis=0)
    measured = np.where(valid & (count >= min_frames)[None], aligned, np.nan)
    out = np.zeros(region.shape)
    out[rows] = build_template(measured, window, smooth, filled=aligned)
    return out


#: Share of the frames, the narrowest, that make the template when the trace's width
#: changes (:func:`follow_frames`).  The narrower the reference, the fewer frames need a
#: (capped) narrowing, but the fewer frames make the template.  Measured on 12 simulated
#: visits of four sets (stage 6's white light against the oracle's, per frame, after
#: regressing on the measured offset and width): a third against the narrower half took
#: the worst visit (jitter median 5 arcsec) from 0.00178 to 0.00115 and the held-out
#: focus-change set's white scatter from 1.90 to 1.47x the oracle's; a quarter was alike,
#: a sixth worse on the `wasp189b` preset (0.00096 -> 0.00113); docs/extraction.md.
REFERENCE_SHARE = 1.0 / 3.0


def follow_frames(data, err, usable, region, smooth=25, offset=None, passes=2, shrink=True,
                  cap=1.5, widen=True, reference=REFERENCE_SHARE):
    """The template and each frame's offset, tilt and smear.

    Round 1 fits every frame against the template of the frames as they lie;
    each further round rebuilds the template from the frames aligned by the
    previous fit and refits.  When the fitted width changes beyond the noise
    (:func:`shrink_smear` keeps more than half of the mean smear's spread),
    the template is made from the narrowest ``reference`` share of the frames
    (at least 4), each widened to the widest of them, so that it has one
    width and the wider frames are widened from it, not narrowed (a
    narrowing's gain is capped, so a frame much narrower than the template
    gets a profile too wide and a flux too high).  Finally the smears are
    shrunk (``shrink``).

    Parameters
    ----------
    data, err, usable : ndarray, shape (n_frames, n_rows, n_columns)
        Stage 5's frames, ``ERR`` and usable pixels.
    region : ndarray of bool, shape (n_rows, n_columns)
    smooth : int
        ``profile_smooth``.
    offset : ndarray, shape (n_frames,), optional
        Starting offsets (:func:`.extraction.trace_offsets`).
    passes : int
        Template-and-fit rounds (typ. 2).
    shrink : bool
        Apply :func:`shrink_smear`.
    cap : float
        See :class:`TemplateWarp`.
    widen : bool
        Widen the reference frames to one width before combining them.
    reference : float
        Share of the frames, the narrowest, that make the template when the
        width changes (:data:`REFERENCE_SHARE`).

    Returns
    -------
    template : ndarray, shape (n_rows, n_columns)
    shape : TraceShape
        Against ``template``; frame ``k``'s profile is :func:`frame_profile`.
    """
    template = series_template(data, usable, region, smooth=smooth)
    shape = fit_trace_shape(data, err, usable, template, region, offset, cap=cap)
    for _ in range(passes - 1):
        frames = widen_to = None
        if shrink_smear(shape).shrink[0] > 0.5 and len(data) >= 4:
            v = shape.mean_smear()
            n_reference = max(4, int(np.ceil(reference * len(v))))
            frames = np.sort(np.argsort(v, kind="stable")[:n_reference])
            widen_to = shape.smear[frames[np.argmax(v[frames])]] if widen else None
        template = series_template(data, usable, region, shape, frames, smooth,
                                   widen_to=widen_to)
        shape = fit_trace_shape(data, err, usable, template, region, shape.offset, cap=cap)
    return template, (shrink_smear(shape) if shrink else shape)


def frame_profile(template, region, shape, k, warp=None):
    """Frame ``k``'s profile: the template moved and smeared by its :class:`TraceShape`.

    Parameters
    ----------
    template : ndarray, shape (n_rows, n_columns)
    region : ndarray of bool
    shape : TraceShape
    k : int
    warp : TemplateWarp, optional
        Of ``template`` (made if not given; pass it when profiling many frames).

    Returns
    -------
    ndarray, shape (n_rows, n_columns)
        Non-negative, zero outside ``region``, each column summing to the
        template's column sum (about 1) over the whole aperture.
    """
    warp = TemplateWarp(template, region) if warp is None else warp
    return warp.full(warp.profile((shape.offset[k], shape.tilt[k]), shape.smear[k]))
