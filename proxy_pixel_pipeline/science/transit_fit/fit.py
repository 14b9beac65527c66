"""Transit depth of one or several visits: a transit times linear systematics.

:func:`fit_light_curves` fits a shared ``Rp/R*`` to one light curve (white or
a channel) of each visit, with each visit's own systematics (solved or
marginalised exactly for each trial transit: :mod:`.likelihood`), optionally
each visit's own mid-transit time and, for the white light, a/R* and the
inclination under Gaussian priors.

Procedure
---------
1. The basis of each visit alone: every candidate ramp (the exponential at
   each timescale, the polynomial of each degree up to ``ramp_order``; both
   shapes with ``ramp="auto"``) and every degree of the trend over the visit
   from 1 to ``visit_order`` is fitted (least squares); the lowest BIC wins (a
   visit whose throughput drifts quadratically takes degree 2, one that
   drifts linearly keeps one parameter fewer).
2. Least squares (``scipy.optimize.least_squares`` on the whitened residuals
   with the coefficients profiled out -- variable projection), started at the
   best depth of a coarse scan.  Parameter errors from the curvature
   ``(J^T J)^-1``.
3. Error inflation (``inflate=True``), per visit, from the residuals of step
   2: the flux errors are multiplied by ``sqrt(chi2 / dof)`` when that exceeds
   1 (errors too small for the scatter) and by the red-noise factor ``beta``
   (:func:`.noise.red_noise`) when it exceeds 1 (scatter that does not average
   down: Winn et al. 2008).  Both are never below 1, so errors are only
   widened.  Least squares is rerun with the inflated errors.
4. ``mode="emcee"``: the affine-invariant ensemble sampler (Foreman-Mackey et
   al. 2013), walkers started in a Gaussian ball of the least-squares
   covariance, seeded from ``seed`` alone (so a channel's result does not
   depend on which MPI rank fits it or in what order).  The integrated
   autocorrelation time is measured (``get_autocorr_time(tol=0)``); a chain
   shorter than 50 times the longest is flagged in :attr:`TransitFit.warnings`.
   When the depth is the only free parameter its light curves are tabulated
   (:meth:`.transit.TransitCurve.table`), vectorized over the walkers.
   ``mode="lsq"``: the least-squares result, with samples drawn from its
   Gaussian approximation.

The depth is sampled with a uniform prior on the signed depth ``rp |rp|`` (the
quantity the light curve measures; negative is an inverted transit), so a
flat light curve gives an ``Rp/R*`` centred on zero; ``Rp/R*`` percentiles are
the signed square roots of the depth's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import least_squares

from ...errors import PipelineError
from .likelihood import Problem, VisitProblem
from .noise import RedNoise, red_noise
from .systematics import SystematicsSpec, design_matrix, ramp_choices
from .transit import TransitCurve, TransitModel, signed_rp
from .visit import Visit

__all__ = ["fit_light_curves", "TransitFit", "VisitResult", "TAU_MULTIPLE"]

#: A chain shorter than this many autocorrelation times is flagged.
TAU_MULTIPLE = 50


@dataclass
class VisitResult:
    """What one visit's fit found (at the best parameters: least squares, or the
    posterior median with emcee).

    Attributes
    ----------
    name : str
    t0, t0_err : float
        Mid-transit time and its error, days (error 0 when fixed).
    coefficient_names : tuple of str
    coefficients, coefficient_errors : ndarray, shape (n_coef,)
        Systematics coefficients (flux units per standard deviation of each
        standardized column; ``constant`` = out-of-transit flux) and their
        errors given the transit (inflated errors).
    center, scale : ndarray, shape (n_coef,)
        Standardization: raw column = ``center + scale * column``.
    dropped : tuple of str
        Columns left out (constant or degenerate).
    timescale : float or None
        Exponential ramp timescale, minutes.
    timescale_bic : dict
        BIC of each candidate timescale, at its best trend degree (when there
        were several timescales).
    visit_order : int
        Degree of the trend over the visit, as chosen.
    ramp : str
        The ramp's shape, as chosen: ``exp``, ``poly`` or ``none``.
    ramp_order : int
        ``poly``: its degree, as chosen (0 otherwise).
    n_used : int
        Frames in the fit.
    chi2 : float
        With the visit's nominal flux errors.
    dof : int
        ``n_used`` minus the coefficients, the visit's own t0 and the shared
        parameters (conservative in a joint fit).
    reduced_chi2, bic : float
        ``chi2 / dof``; ``chi2 + n_par ln n_used``, ``n_par = n_coef + own t0
        + shared``.
    red_noise : RedNoise
        Binning test of the residuals (``beta`` = ``red_noise.beta``).
    error_scale : float
        Factor applied to the flux errors (1 when not inflated).
    used : ndarray of bool, shape (n_frames,)
    times : ndarray, shape (n_frames,)
    systematics, transit, model : ndarray, shape (n_frames,)
        ``X @ beta`` (flux units), ``T(t)``, their product (NaN where the
        regressors are missing).
    detrended, detrended_err : ndarray, shape (n_frames,)
        ``flux / systematics`` and the (inflated) error divided likewise.
    residuals : ndarray, shape (n_frames,)
        ``detrended - transit`` (relative flux).
    """

    name: str
    t0: float
    t0_err: float
    coefficient_names: tuple
    coefficients: np.ndarray
    coefficient_errors: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    dropped: tuple
    timescale: float | None
    timescale_bic: dict
    visit_order: int
    ramp: str
    ramp_order: int
    n_used: int
    chi2: float
    dof: int
    reduced_chi2: float
    bic: float
    red_noise: RedNoise
    error_scale: float
    used: np.ndarray
    times: np.ndarray
    systematics: np.ndarray
    transit: np.ndarray
    model: np.ndarray
    detrended: np.ndarray
    detrended_err: np.ndarray
    residuals: np.ndarray

    @property
    def beta(self) -> float:
        """Red-noise factor of the residuals."""
        return self.red_noise.beta


@dataclass
class TransitFit:
    """A (joint) transit fit.

    Attributes
    ----------
    rp_rs : float
        Posterior median of Rp/R* (least squares: best fit).
    rp_rs_p16, rp_rs_p84 : float
        16th and 84th percentiles.
    rp_rs_err_lo, rp_rs_err_hi : float
        ``rp_rs - rp_rs_p16`` and ``rp_rs_p84 - rp_rs``.
    depth, depth_err : float
        Signed depth ``rp |rp|`` (median) and half the 16-84 % range.
    a_rs, inclination : float
        Used (fixed) or fitted (median) values; ``*_err`` their errors (0 when fixed).
    transit : TransitModel
        The model with the fitted a/R* and inclination.
    visits : list of VisitResult
    parameter_names : tuple of str
        Columns of ``samples``: ``rp_rs``, ``t0_<visit>`` (days) per visit when
        free, ``a_rs``, ``inclination`` when free.
    samples : ndarray, shape (n_samples, n_par)
        Posterior samples after burn-in (emcee, flattened walker by walker at
        each step), or draws from the least-squares Gaussian.
    best : ndarray, shape (n_par,)
        Medians (emcee) or the best fit (lsq), same columns.
    covariance : ndarray
        Least-squares covariance of the internal parameters (``depth``,
        ``dt0_*``, ``a_rs``, ``inclination``) with the inflated errors.
    mode : str
    chi2, bic : float
        Summed over visits (nominal errors); BIC with every coefficient.
    n_used : int
    autocorr_time : ndarray or None
        Integrated autocorrelation time of each parameter, steps.
    acceptance : float or None
        Mean acceptance fraction.
    walkers, steps, burn : int
    warnings : list of str
        E.g. a chain shorter than ``TAU_MULTIPLE`` autocorrelation times.
    """

    rp_rs: float
    rp_rs_p16: float
    rp_rs_p84: float
    depth: float
    depth_err: float
    a_rs: float
    a_rs_err: float
    inclination: float
    inclination_err: float
    transit: TransitModel
    visits: list
    parameter_names: tuple
    samples: np.ndarray
    best: np.ndarray
    covariance: np.ndarray
    mode: str
    chi2: float
    bic: float
    n_used: int
    autocorr_time: np.ndarray | None = None
    acceptance: float | None = None
    walkers: int = 0
    steps: int = 0
    burn: int = 0
    warnings: list = field(default_factory=list)

    @property
    def rp_rs_err_lo(self) -> float:
        return self.rp_rs - self.rp_rs_p16

    @property
    def rp_rs_err_hi(self) -> float:
        return self.rp_rs_p84 - self.rp_rs

    @property
    def rp_rs_err(self) -> float:
        """Half the 16-84 % range of Rp/R*."""
        return 0.5 * (self.rp_rs_p84 - self.rp_rs_p16)

    @property
    def autocorr_ok(self) -> bool:
        """The chain is at least ``TAU_MULTIPLE`` autocorrelation times long (True for lsq)."""
        if self.autocorr_time is None:
            return True
        return bool((self.steps - self.burn) >= TAU_MULTIPLE * np.nanmax(self.autocorr_time))


# ---- helpers ----------------------------------------------------------------------------------
def _problem(visits, designs, transit, scales, options):
    return Problem([VisitProblem(v, d, transit, s) for v, d, s in zip(visits, designs, scales)],
                   transit, **options)


def _least_squares(problem, x0=None):
    """Best parameters and their covariance (profile likelihood)."""
    lo, hi = problem.bounds()
    if x0 is None:
        # 40 depths: none exactly 0, where a transit time has no gradient
        grid = np.linspace(problem.depth_bounds[0], problem.depth_bounds[1], 40)
        theta = np.stack([problem.start(d) for d in grid])
        chi2 = np.sum([part[3] for part in problem.evaluate(theta, marginalise=False)], axis=0)
        chi2 = chi2 - 2 * problem.log_prior(theta)
        x0 = theta[int(np.nanargmin(chi2))]
    x0 = np.clip(np.asarray(x0, float), lo, hi)
    res = least_squares(problem.residuals, x0, bounds=(lo, hi), method="trf",
                        jac=problem.jacobian, x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12,
                        max_nfev=200 * problem.ndim)
    J = res.jac
    cov = np.linalg.pinv(J.T @ J)
    err = np.sqrt(np.abs(np.diag(cov)))
    dead = [name for name, e, a, b in zip(problem.names, err, lo, hi)
            if not e < (b - a) or not np.any(J[:, problem.names.index(name)])]
    if dead:
        raise PipelineError(f"transit fit: the light curves do not constrain {dead} "
                            f"(visits {[p.visit.name for p in problem.problems]}: no frame in "
                            f"transit?)")
    return res.x, cov


def _white_covariance(problem, v, x, beta, model):
    """Expected covariance of a visit's relative residuals under white noise (linearized fit)."""
    p = problem.problems[v]
    depth, t0, a, inc = problem.unpack(x)
    S = p.X @ beta
    T = model / S
    cols = [p.X * T[:, None]]
    h = 1e-5
    d = depth[0]
    cols.append(S * (p.curve(signed_rp(d + h), t0[0, v], a[0], inc[0])
                     - p.curve(signed_rp(d - h), t0[0, v], a[0], inc[0]))[:, None] / (2 * h))
    if problem.free_t0:
        dt = 1e-4
        cols.append(S * (p.curve(signed_rp(d), t0[0, v] + dt, a[0], inc[0])
                         - p.curve(signed_rp(d), t0[0, v] - dt, a[0], inc[0]))[:, None] / (2 * dt))
    A = np.column_stack(cols)
    hat = A @ np.linalg.pinv((A * p.w[:, None]).T @ A) @ A.T
    return (np.diag(p.sigma ** 2) - hat) / np.outer(model, model)


def _visit_stats(problem, x):
    """Per visit: nominal chi2, dof, relative residuals and red-noise test at ``x``."""
    x = np.asarray(x, float)
    parts = problem.evaluate(x[None, :], marginalise=False)
    n_shared = problem.ndim - (len(problem.problems) if problem.free_t0 else 0)
    out = []
    for v, (p, (beta, model, _, chi2)) in enumerate(zip(problem.problems, parts)):
        chi2_nominal = float(chi2[0]) * p.error_scale ** 2
        dof = p.n - p.k - int(problem.free_t0) - n_shared
        rel = p.y / model[0] - 1.0
        test = red_noise(rel, p.visit.times[p.used],
                         covariance=_white_covariance(problem, v, x, beta[0], model[0]))
        out.append((beta[0], model[0], chi2_nominal, dof, test))
    return out


def _inflation(stats):
    scales = []
    for _, _, chi2, dof, test in stats:
        s = np.sqrt(chi2 / dof) if dof > 0 else 1.0
        b = test.beta if np.isfinite(test.beta) else 1.0
        scales.append(max(1.0, s) * max(1.0, b))
    return scales


def _choose_basis(visit, spec, transit, options, label):
    """The visit's basis of lowest BIC (this visit alone): the ramp's shape, timescale or
    degree (:func:`.systematics.ramp_choices`) and the degree of the trend over the visit
    (1 .. ``spec.visit_order``).  Returns the chosen single-shape spec (an exponential with
    its one timescale) and the BIC of each exponential timescale tried (at its best trend
    degree)."""
    bics = {}
    opts = dict(options, geometry_priors=None)
    orders = range(1, spec.visit_order + 1) if spec.visit_order > 1 else (spec.visit_order,)
    choices = ramp_choices(spec)
    for i, choice in enumerate(choices):
        for order in orders:
            design = design_matrix(replace(choice, visit_order=order), visit.times, visit.orbit,
                                   visit.since_start, visit.regressors, visit.mask, label=label)
            problem = _problem([visit], [design], transit, [1.0], opts)
            x, _ = _least_squares(problem)
            (_, _, chi2, _, _), = _visit_stats(problem, x)
            bics[(i, order)] = chi2 + (problem.problems[0].k + problem.ndim) * np.log(
                problem.problems[0].n)
    i, order = min(bics, key=bics.get)
    chosen = replace(choices[i], visit_order=order)
    per_scale = {c.ramp_timescales[0]: min(b for (j, _), b in bics.items() if j == k)
                 for k, c in enumerate(choices) if c.ramp == "exp"}
    return chosen, per_scale


def _seeds(seed):
    ss = np.random.SeedSequence(seed)
    init, chain = ss.spawn(2)
    return np.random.default_rng(init), np.random.RandomState(chain.generate_state(8))


def _initial_walkers(problem, x, cov, walkers, rng):
    """Walkers in a Gaussian ball of the least-squares covariance, inside the prior."""
    ndim = problem.ndim
    cov = 0.5 * (cov + cov.T)
    w, v = np.linalg.eigh(cov)
    root = v * np.sqrt(np.clip(w, 0, None))
    floor = 1e-6 * np.maximum(np.abs(x), 1e-3)
    p0 = np.empty((walkers, ndim))
    filled = 0
    for _ in range(200):
        draw = x + rng.standard_normal((walkers, ndim)) @ root.T \
            + floor * rng.standard_normal((walkers, ndim))
        ok = draw[np.isfinite(problem.log_prob(draw))]
        take = min(walkers - filled, len(ok))
        p0[filled:filled + take] = ok[:take]
        filled += take
        if filled == walkers:
            return p0
        root = root * 0.5
    raise PipelineError("transit fit: could not start the walkers inside the prior")


def _sample(problem, x, cov, walkers, steps, burn, seed):
    import emcee

    rng, state = _seeds(seed)
    p0 = _initial_walkers(problem, x, cov, walkers, rng)
    depth_sd = float(np.sqrt(max(cov[0, 0], 0.0)))
    tabulated = problem.use_tables(x[0], max(12 * depth_sd, 1e-5))
    try:
        sampler = emcee.EnsembleSampler(walkers, problem.ndim, problem.log_prob, vectorize=True)
        sampler.random_state = state.get_state()
        sampler.run_mcmc(p0, steps, progress=False)
    finally:
        if tabulated:
            problem.drop_tables()
    chain = sampler.get_chain(discard=burn, flat=True)
    tau = np.atleast_1d(sampler.get_autocorr_time(discard=burn, tol=0))
    return chain, tau, float(np.mean(sampler.acceptance_fraction))


def _outputs(problem, internal):
    """Output columns (rp_rs, absolute t0s, geometry) of internal parameter rows."""
    internal = np.atleast_2d(internal)
    cols = [signed_rp(internal[:, 0])]
    names = ["rp_rs"]
    for i, name in enumerate(problem.names[1:], start=1):
        if name.startswith("dt0_"):
            cols.append(problem.t0_ref[i - 1] + internal[:, i])
            names.append("t0_" + name[4:])
        else:
            cols.append(internal[:, i])
            names.append(name)
    return tuple(names), np.column_stack(cols)


def _visit_result(problem, v, x, x_err, stats, timescale_bic):
    p = problem.problems[v]
    visit, design = p.visit, p.design
    beta, _, chi2, dof, test = stats[v]
    depth, t0, a, inc = problem.unpack(x)
    n_par = p.k + int(problem.free_t0) + problem.ndim - (
        len(problem.problems) if problem.free_t0 else 0)
    transit = np.full(visit.n_frames, np.nan)
    finite = np.isfinite(visit.times)
    transit[finite] = TransitCurve(problem.transit, visit.times[finite])(
        signed_rp(depth[0]), t0[0, v], a[0], inc[0])
    systematics = design.matrix @ beta
    with np.errstate(invalid="ignore", divide="ignore"):
        detrended = visit.flux / systematics
        detrended_err = visit.flux_err * p.error_scale / np.abs(systematics)
    cov = p.covariance(transit[p.used])
    t0_err = float(x_err[1 + v]) if problem.free_t0 else 0.0
    return VisitResult(
        name=visit.name, t0=float(t0[0, v]), t0_err=t0_err, coefficient_names=design.names,
        coefficients=beta, coefficient_errors=np.sqrt(np.clip(np.diag(cov), 0, None)),
        center=design.center, scale=design.scale, dropped=design.dropped,
        timescale=design.timescale, timescale_bic=timescale_bic,
        visit_order=design.visit_order, ramp=design.ramp, ramp_order=design.ramp_order,
        n_used=p.n, chi2=chi2, dof=dof,
        reduced_chi2=chi2 / dof if dof > 0 else np.nan, bic=chi2 + n_par * np.log(p.n),
        red_noise=test, error_scale=p.error_scale, used=p.used.copy(), times=visit.times,
        systematics=systematics, transit=transit, model=systematics * transit,
        detrended=detrended, detrended_err=detrended_err, residuals=detrended - transit)


def _as_list(value, n, kind, name):
    if isinstance(value, kind) or value is None:
        return [value] * n
    value = list(value)
    if len(value) != n:
        raise PipelineError(f"transit fit: '{name}' has {len(value)} entries for {n} visits")
    return value


# ---- the fit ----------------------------------------------------------------------------------
def fit_light_curves(visits, transit: TransitModel, systematics=None, *, mode="emcee",
                     free_t0=False, t0_window=0.04, geometry_priors=None,
                     depth_bounds=(-0.25, 0.25), inflate=True, marginalise=True, walkers=None,
                     steps=2000, burn=500, seed=0, lsq_samples=4000) -> TransitFit:
    """Fit a shared Rp/R* to one light curve of each visit, with per-visit systematics.

    Parameters
    ----------
    visits : Visit or sequence of Visit
        One light curve per visit (visit names should differ).
    transit : TransitModel
        Period, a/R*, inclination, limb darkening (fixed, or the centre of
        ``geometry_priors``).
    systematics : SystematicsSpec or sequence of them, optional
        The basis of every visit, or one per visit (default
        ``SystematicsSpec()``).
    mode : {"emcee", "lsq"}
    free_t0 : bool
        Each visit's mid-transit time free (uniform within ``t0_window`` days
        of the visit's ``t0``); else fixed at ``t0``.
    t0_window : float
        Days.
    geometry_priors : dict, optional
        ``{"a_rs": (mean, sd), "inclination": (mean, sd [deg])}``: free with
        these Gaussian priors (white light).
    depth_bounds : (float, float)
        Uniform prior on the signed depth.
    inflate : bool
        Widen each visit's flux errors by ``max(1, sqrt(chi2 / dof)) *
        max(1, beta)`` before the final fit.
    marginalise : bool
        Coefficients marginalised (flat prior) rather than profiled in emcee.
    walkers : int, optional
        Default ``max(16, 4 * n_par)`` (made even).
    steps, burn : int
        emcee steps per walker and how many are discarded.
    seed : int or sequence of int
        Seeds the walkers' start and the sampler (``np.random.SeedSequence``);
        derive it from the channel, not from the MPI rank.
    lsq_samples : int
        ``mode="lsq"``: draws from the Gaussian approximation.

    Returns
    -------
    TransitFit

    Raises
    ------
    PipelineError
        Bad options, a regressor the basis needs is missing, too few frames.
    """
    visits = [visits] if isinstance(visits, Visit) else list(visits)
    if not visits:
        raise PipelineError("transit fit: no visit to fit")
    if not isinstance(transit, TransitModel):
        raise PipelineError("transit fit: 'transit' must be a TransitModel")
    if mode not in ("emcee", "lsq"):
        raise PipelineError(f"transit fit: 'mode' must be emcee or lsq, got {mode!r}")
    if not (int(steps) == steps and int(burn) == burn and 0 <= burn < steps):
        raise PipelineError(f"transit fit: need integers 0 <= burn < steps, got burn={burn}, "
                            f"steps={steps}")
    specs = _as_list(systematics, len(visits), SystematicsSpec, "systematics")
    specs = [SystematicsSpec() if s is None else s for s in specs]
    options = dict(free_t0=free_t0, t0_window=t0_window, geometry_priors=geometry_priors,
                   depth_bounds=depth_bounds, marginalise=marginalise)

    designs, bics = [], []
    for visit, spec in zip(visits, specs):
        bic = {}
        if len(ramp_choices(spec)) > 1 or spec.visit_order > 1:
            spec, bic = _choose_basis(visit, spec, transit, options, visit.name)
            bic = bic if len(bic) > 1 else {}
        designs.append(design_matrix(spec, visit.times, visit.orbit, visit.since_start,
                                     visit.regressors, visit.mask, label=visit.name))
        bics.append(bic)

    problem = _problem(visits, designs, transit, [1.0] * len(visits), options)
    x, cov = _least_squares(problem)
    scales = [1.0] * len(visits)
    if inflate:
        scales = _inflation(_visit_stats(problem, x))
        if any(s > 1.0 for s in scales):
            problem = _problem(visits, designs, transit, scales, options)
            x, cov = _least_squares(problem, x)

    ndim, notes = problem.ndim, []
    if mode == "emcee":
        walkers = int(walkers) if walkers else max(16, 4 * ndim)
        walkers += walkers % 2
        if walkers < 2 * ndim:
            raise PipelineError(f"transit fit: 'walkers' must be >= {2 * ndim}, got {walkers}")
        chain, tau, acceptance = _sample(problem, x, cov, walkers, int(steps), int(burn), seed)
        x_best = np.median(chain, axis=0)
        lo, hi = np.percentile(chain, [15.865525393145708, 84.13447460685429], axis=0)
        x_err = 0.5 * (hi - lo)
        depth_p = np.percentile(chain[:, 0], [15.865525393145708, 50, 84.13447460685429])
        if (steps - burn) < TAU_MULTIPLE * np.nanmax(tau):
            notes.append(f"chain of {steps - burn} steps is shorter than {TAU_MULTIPLE} "
                         f"autocorrelation times (max tau {np.nanmax(tau):.1f})")
    else:
        tau = acceptance = None
        walkers = steps = burn = 0
        x_best = x
        x_err = np.sqrt(np.clip(np.diag(cov), 0, None))
        depth_p = np.array([x[0] - x_err[0], x[0], x[0] + x_err[0]])
        rng, _ = _seeds(seed)
        chain = rng.multivariate_normal(x, 0.5 * (cov + cov.T), size=int(lsq_samples),
                                        method="eigh")

    names, samples = _outputs(problem, chain)
    _, best = _outputs(problem, x_best)
    stats = _visit_stats(problem, x_best)
    results = [_visit_result(problem, v, x_best, x_err, stats, bics[v])
               for v in range(len(visits))]
    _, _, a, inc = problem.unpack(x_best)
    col = {name: i for i, name in enumerate(problem.names)}
    rp = signed_rp(depth_p)
    chi2 = float(sum(r.chi2 for r in results))
    n_used = int(sum(r.n_used for r in results))
    n_par = sum(p.k for p in problem.problems) + ndim
    return TransitFit(
        rp_rs=float(rp[1]), rp_rs_p16=float(rp[0]), rp_rs_p84=float(rp[2]),
        depth=float(depth_p[1]), depth_err=float(0.5 * (depth_p[2] - depth_p[0])),
        a_rs=float(a[0]), a_rs_err=float(x_err[col["a_rs"]]) if "a_rs" in col else 0.0,
        inclination=float(inc[0]),
        inclination_err=float(x_err[col["inclination"]]) if "inclination" in col else 0.0,
        transit=replace(transit, a_rs=float(a[0]), inclination=float(inc[0])),
        visits=results, parameter_names=names, samples=samples, best=best[0], covariance=cov,
        mode=mode, chi2=chi2, bic=chi2 + n_par * np.log(n_used), n_used=n_used,
        autocorr_time=tau, acceptance=acceptance, walkers=walkers, steps=int(steps),
        burn=int(burn), warnings=notes)
