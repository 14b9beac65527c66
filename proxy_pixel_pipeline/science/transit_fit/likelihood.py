"""The likelihood of several visits' light curves, systematics solved exactly.

Each visit's light curve is ``F = T(t; rp, t0) * (X @ beta)`` with Gaussian
errors ``sigma``.  For a trial transit ``T`` the model is linear in the
systematics coefficients ``beta``, so they need no sampling: the weighted
normal equations ``G beta = b`` with ``G = X^T diag(w T^2) X`` and
``b = X^T (w T y)`` (``w = 1 / sigma^2``) give them exactly.

Profile or marginal likelihood
------------------------------
``marginalise=False`` uses the profile likelihood ``-chi2_min / 2`` (what a
least-squares fit maximises).  ``marginalise=True`` (the default of the fits)
integrates ``beta`` out under a flat prior, the limit of a wide Gaussian
prior: ``log L = -chi2_min / 2 - log det(G) / 2 + const``.  This is exact for
a linear-Gaussian model, propagates the coefficients' uncertainty into the
transit parameters, and costs one determinant of the ``k x k`` matrix
already formed.  A flat prior is used rather than an informative Gaussian
because nothing is known in advance about the coefficients of standardized
regressors (a wide Gaussian prior would give the same result up to a
constant).  The ``log det`` term varies with the transit only through the
in-transit frames' ``T^2`` weights, so profile and marginal maxima agree to
a small fraction of a sigma.

Everything is vectorized over trial parameter sets (emcee's walkers) and
visits: the visits' frames and coefficients are padded to common sizes
(padded frames weigh nothing, padded coefficients get a unit diagonal and
come out 0), ``G`` for ``m`` trials of every visit is one batched matrix
product ``(w T^2) @ XX`` with the per-frame outer products ``XX`` formed
once, and the ``V * m`` small systems are solved in one call.

Parameters of a fit, in order: ``depth`` (signed ``rp |rp|``, uniform prior
within ``depth_bounds``), one ``dt0`` per visit when mid-transit times are
free (days from the visit's ``t0``, uniform within ``+- t0_window``), then
``a_rs`` and ``inclination`` when they have Gaussian priors.
"""

from __future__ import annotations

import numpy as np

from ...errors import PipelineError
from .transit import TransitCurve, signed_rp

__all__ = ["VisitProblem", "Problem"]


class VisitProblem:
    """One visit's usable frames, design, weights and transit curve.

    Parameters
    ----------
    visit : Visit
    design : Design
    transit : TransitModel
    error_scale : float
        Factor on the visit's flux errors (error inflation).
    """

    def __init__(self, visit, design, transit, error_scale=1.0):
        use = design.usable & visit.usable
        if use.sum() <= design.matrix.shape[1]:
            raise PipelineError(f"{visit.name}: {int(use.sum())} usable frames for "
                                f"{design.matrix.shape[1]} systematics terms")
        self.visit, self.design, self.used = visit, design, use
        self.error_scale = float(error_scale)
        self.X = np.ascontiguousarray(design.matrix[use])
        self.y = visit.flux[use]
        self.sigma = visit.flux_err[use] * self.error_scale
        self.w = 1.0 / self.sigma ** 2
        self.curve = TransitCurve(transit, visit.times[use])

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def k(self) -> int:
        return self.X.shape[1]

    def covariance(self, T):
        """Covariance of the coefficients at one transit ``T`` (n,), given the transit."""
        G = (self.X * (self.w * T ** 2)[:, None]).T @ self.X
        return np.linalg.pinv(G)


class Problem:
    """The joint likelihood and prior of several visits.

    Parameters
    ----------
    problems : list of VisitProblem
    transit : TransitModel
    free_t0 : bool
        One free mid-transit time per visit.
    t0_window : float
        Half-width of the uniform prior on each ``t0``, days.
    geometry_priors : dict, optional
        ``{"a_rs": (mean, sd), "inclination": (mean, sd)}`` (either or both):
        these are free with Gaussian priors (a/R* > 1, 0 < inclination <= 90).
    depth_bounds : (float, float)
        Uniform prior on the signed depth.
    marginalise : bool
        Marginal (True) or profile likelihood of the coefficients.
    """

    def __init__(self, problems, transit, free_t0=False, t0_window=0.04, geometry_priors=None,
                 depth_bounds=(-0.25, 0.25), marginalise=True):
        self.problems, self.transit = list(problems), transit
        self.free_t0, self.t0_window = bool(free_t0), float(t0_window)
        self.priors = dict(geometry_priors or {})
        for key, value in self.priors.items():
            if key not in ("a_rs", "inclination"):
                raise PipelineError(f"transit fit: geometry prior '{key}' is not a_rs or "
                                    f"inclination")
            mu, sd = (float(v) for v in value)
            if not (np.isfinite(mu) and sd > 0):
                raise PipelineError(f"transit fit: geometry prior '{key}' needs a finite mean "
                                    f"and a positive sd, got {value!r}")
            self.priors[key] = (mu, sd)
        if self.free_t0 and transit.model == "box":
            raise PipelineError("transit fit: free mid-transit times need transit_model: batman")
        self.depth_bounds = (float(depth_bounds[0]), float(depth_bounds[1]))
        if not self.depth_bounds[0] < self.depth_bounds[1]:
            raise PipelineError(f"transit fit: depth_bounds must be increasing, got {depth_bounds}")
        self.marginalise = bool(marginalise)
        self.t0_ref = np.array([p.visit.t0 for p in self.problems])
        v = len(self.problems)
        self.names = (["depth"] + ([f"dt0_{p.visit.name}" for p in self.problems]
                                   if self.free_t0 else [])
                      + [k for k in ("a_rs", "inclination") if k in self.priors])
        self._slice_t0 = slice(1, 1 + v) if self.free_t0 else None
        self.ndim = len(self.names)
        self._stack()

    def _stack(self):
        """Pad the visits' arrays to common sizes ``(V, n_max[, k_max])``."""
        v = len(self.problems)
        n = max(p.n for p in self.problems)
        k = max(p.k for p in self.problems)
        self._n, self._k = n, k
        self._X = np.zeros((v, n, k))
        self._y = np.zeros((v, n))
        self._w = np.zeros((v, n))
        self._eye = np.zeros((v, k, k))
        for i, p in enumerate(self.problems):
            self._X[i, :p.n, :p.k] = p.X
            self._y[i, :p.n] = p.y
            self._w[i, :p.n] = p.w
            self._eye[i, np.arange(p.k, k), np.arange(p.k, k)] = 1.0
        self._XX = (self._X[:, :, :, None] * self._X[:, :, None, :]).reshape(v, n, k * k)
        self._Xt = np.ascontiguousarray(self._X.transpose(0, 2, 1))
        self._rows = None

    def _transits(self, depth, t0, a, inc):
        """Light curves ``(V, m, n_max)`` (padding 1)."""
        if self._rows is not None:
            g = self._grid
            i = np.clip(np.searchsorted(g, depth) - 1, 0, g.size - 2)
            frac = ((depth - g[i]) / (g[i + 1] - g[i]))[None, :, None]
            rows = self._rows
            T = rows[:, i] + frac * (rows[:, i + 1] - rows[:, i])
            outside = np.flatnonzero((depth < g[0]) | (depth > g[-1]))
            if outside.size == 0:
                return T
        else:
            T = np.ones((len(self.problems), depth.size, self._n))
            outside = np.arange(depth.size)
        rp = signed_rp(depth)
        for v, p in enumerate(self.problems):
            for j in outside:
                T[v, j, :p.n] = p.curve(rp[j], t0[j, v], a[j], inc[j])
        return T

    def solve(self, T, marginalise=True):
        """Coefficients of every visit for trial transits ``T`` (V, m, n_max).

        Returns
        -------
        beta : ndarray, shape (V, m, k_max)
        model : ndarray, shape (V, m, n_max)
            ``T * (X @ beta)``.
        loglike : ndarray, shape (V, m)
            ``-chi2 / 2`` (``- log det G / 2`` when marginalised).
        chi2 : ndarray, shape (V, m)
        """
        v, m = T.shape[:2]
        k = self._k
        wT = self._w[:, None, :] * T
        G = np.matmul(wT * T, self._XX).reshape(v, m, k, k) + self._eye[:, None]
        b = np.matmul(wT * self._y[:, None, :], self._X)
        try:
            beta = np.linalg.solve(G, b[..., None])[..., 0]
        except np.linalg.LinAlgError:
            beta = np.stack([[np.linalg.lstsq(g, c, rcond=None)[0] for g, c in zip(gv, bv)]
                             for gv, bv in zip(G, b)])
        model = T * np.matmul(beta, self._Xt)
        chi2 = np.sum(self._w[:, None, :] * (self._y[:, None, :] - model) ** 2, axis=2)
        loglike = -0.5 * chi2
        if marginalise:
            sign, logdet = np.linalg.slogdet(G)
            loglike = np.where(sign > 0, loglike - 0.5 * logdet, -np.inf)
        return beta, model, loglike, chi2

    # ---- parameters ------------------------------------------------------------
    def unpack(self, theta):
        """Depth (m,), t0 (m, V; days), a_rs (m,) and inclination (m,) of ``theta`` (m, ndim)."""
        theta = np.atleast_2d(np.asarray(theta, float))
        m = theta.shape[0]
        depth = theta[:, 0]
        t0 = np.broadcast_to(self.t0_ref, (m, len(self.problems))).copy()
        if self.free_t0:
            t0 += theta[:, self._slice_t0]
        col = {name: i for i, name in enumerate(self.names)}
        a = theta[:, col["a_rs"]] if "a_rs" in col else np.full(m, self.transit.a_rs)
        inc = (theta[:, col["inclination"]] if "inclination" in col
               else np.full(m, self.transit.inclination))
        return depth, t0, a, inc

    def bounds(self):
        """Lower and upper bounds of each parameter (for least squares)."""
        lo, hi = [self.depth_bounds[0]], [self.depth_bounds[1]]
        if self.free_t0:
            lo += [-self.t0_window] * len(self.problems)
            hi += [self.t0_window] * len(self.problems)
        if "a_rs" in self.priors:
            lo.append(1.0 + 1e-9)
            hi.append(np.inf)
        if "inclination" in self.priors:
            lo.append(1e-6)
            hi.append(90.0)
        return np.array(lo), np.array(hi)

    def start(self, depth):
        """A parameter vector at ``depth``, t0s at their guesses, geometry at the priors' means."""
        x = [depth] + [0.0] * (len(self.problems) if self.free_t0 else 0)
        x += [self.priors[k][0] for k in ("a_rs", "inclination") if k in self.priors]
        lo, hi = self.bounds()
        return np.clip(np.array(x, float), lo, np.where(np.isfinite(hi), hi, np.inf))

    def log_prior(self, theta):
        """Log prior (m,): uniform depth and t0s, Gaussian geometry; -inf outside the support."""
        theta = np.atleast_2d(np.asarray(theta, float))
        lo, hi = self.bounds()
        inside = np.all((theta >= lo) & (theta <= hi), axis=1) & np.all(np.isfinite(theta), 1)
        lp = np.zeros(theta.shape[0])
        for i, name in enumerate(self.names):
            if name in self.priors:
                mu, sd = self.priors[name]
                lp -= 0.5 * ((theta[:, i] - mu) / sd) ** 2
        return np.where(inside, lp, -np.inf)

    # ---- likelihood ------------------------------------------------------------
    def evaluate(self, theta, marginalise=None):
        """Per visit ``(beta, model, loglike, chi2)`` for ``theta`` (m, ndim)."""
        marginalise = self.marginalise if marginalise is None else marginalise
        beta, model, loglike, chi2 = self.solve(self._transits(*self.unpack(theta)), marginalise)
        return [(beta[v, :, :p.k], model[v, :, :p.n], loglike[v], chi2[v])
                for v, p in enumerate(self.problems)]

    def log_prob(self, theta):
        """Log posterior (m,) of ``theta`` (m, ndim), up to a constant (vectorized for emcee)."""
        theta = np.atleast_2d(np.asarray(theta, float))
        out = self.log_prior(theta)
        ok = np.flatnonzero(np.isfinite(out))
        if ok.size:
            loglike = self.solve(self._transits(*self.unpack(theta[ok])))[2]
            out[ok] += loglike.sum(axis=0)
        return out

    #: Steps of the numerical Jacobian: depth, dt0 (days), a_rs, inclination (deg).
    STEPS = {"depth": 1e-6, "dt0": 1e-5, "a_rs": 1e-5, "inclination": 1e-4}

    def residual_rows(self, theta):
        """Whitened residuals (m, n_res) of parameter rows, with the geometry priors."""
        theta = np.atleast_2d(np.asarray(theta, float))
        parts = self.evaluate(theta, marginalise=False)
        res = [np.sqrt(p.w) * (p.y - part[1]) for p, part in zip(self.problems, parts)]
        for i, name in enumerate(self.names):
            if name in self.priors:
                mu, sd = self.priors[name]
                res.append(((theta[:, i] - mu) / sd)[:, None])
        return np.concatenate(res, axis=1)

    def residuals(self, x):
        """Whitened residuals of one parameter vector (least squares)."""
        return self.residual_rows(x)[0]

    def jacobian(self, x):
        """Central differences of :meth:`residuals` with absolute steps (one-sided at a
        bound), all ``2 * ndim`` trial vectors evaluated at once."""
        x = np.asarray(x, float)
        lo, hi = self.bounds()
        steps = np.array([self.STEPS["dt0" if name.startswith("dt0_") else name]
                          for name in self.names])
        up = np.minimum(x + steps, hi)
        down = np.maximum(x - steps, lo)
        rows = np.repeat(x[None, :], 2 * self.ndim, axis=0)
        k = np.arange(self.ndim)
        rows[k, k] = up
        rows[self.ndim + k, k] = down
        r = self.residual_rows(rows)
        return ((r[:self.ndim] - r[self.ndim:]) / (up - down)[:, None]).T

    def use_tables(self, centre, half_width, points=129):
        """Tabulate each visit's light curve in depth around ``centre`` (fixed t0 and geometry).

        Only when the depth is the one free parameter; depths outside
        ``centre +- half_width`` are still computed exactly.
        """
        if self.ndim != 1:
            return False
        lo = max(centre - half_width, self.depth_bounds[0])
        hi = min(centre + half_width, self.depth_bounds[1])
        if not hi > lo:
            return False
        grid = np.linspace(lo, hi, int(points))
        rows = np.ones((len(self.problems), grid.size, self._n))
        for v, p in enumerate(self.problems):
            rows[v, :, :p.n] = p.curve.table(grid, self.t0_ref[v]).rows
        self._grid, self._rows = grid, rows
        return True

    def drop_tables(self):
        self._rows = None
