"""Spectroscopic channels: their own systematics, or the white light's divided out.

Most of a visit's systematics (pointing, throughput settling, drifts) are
nearly the same at every wavelength.  A channel can be fitted

* with the same basis as the white light (``common_mode="none"``): every
  coefficient fitted again from the channel's own, noisier light curve; or
* after division by the white light's systematics (common mode), with a
  reduced basis (default: a constant and a slope in time, for what differs
  by wavelength):

  - ``"model"``: divided by the white light's fitted systematics model
    ``X @ beta`` of the visit (normalised to 1), which adds no noise;
  - ``"empirical"``: divided by the white light over its fitted transit
    ``F_white / T_white`` (the "divide-white" of Kreidberg et al. 2014 /
    Stevenson et al. 2014), which also removes common systematics the model
    misses, at the price of the white light's own noise (added to the
    channel's errors in quadrature).

The channel then takes the white fit's mid-transit times and a/R* and
inclination (fixed), and the white fit's frame selection (e.g. a dropped
first orbit).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...errors import PipelineError
from .fit import TransitFit, fit_light_curves
from .systematics import SystematicsSpec
from .visit import Visit

__all__ = ["common_mode_visits", "fit_channel", "COMMON_MODE_BASIS", "COMMON_MODES"]

#: The reduced basis after common-mode division: a constant and a slope in time.
COMMON_MODE_BASIS = SystematicsSpec(ramp="none", first_orbit="keep", visit_order=1,
                                    offset_order=0, width_order=0)
COMMON_MODES = ("none", "model", "empirical")


def _check(visits, white_fit):
    visits = [visits] if isinstance(visits, Visit) else list(visits)
    if len(visits) != len(white_fit.visits):
        raise PipelineError(f"channel fit: {len(visits)} visits for a white fit of "
                            f"{len(white_fit.visits)}")
    for visit, white in zip(visits, white_fit.visits):
        if visit.n_frames != white.times.size:
            raise PipelineError(f"{visit.name}: {visit.n_frames} frames in the channel, "
                                f"{white.times.size} in the white light curve")
    return visits


def common_mode_visits(visits, white_fit: TransitFit, method="model"):
    """Channel visits divided by the white light's systematics, visit by visit.

    Parameters
    ----------
    visits : Visit or sequence of Visit
        The channel's light curve in each visit, in the white fit's visit order.
    white_fit : TransitFit
        The white light's fit of the same visits.
    method : {"model", "empirical"}

    Returns
    -------
    list of Visit
        Flux and errors divided; ``t0`` the white fit's; frames the white fit
        did not use masked.
    """
    if method not in ("model", "empirical"):
        raise PipelineError(f"channel fit: common mode must be model or empirical, got {method!r}")
    out = []
    for visit, white in zip(_check(visits, white_fit), white_fit.visits):
        if method == "model":
            ref = white.systematics
            extra = np.zeros(visit.n_frames)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                ref = white.detrended * white.systematics / white.transit
                extra = white.detrended_err / np.abs(white.detrended)
        norm = np.nanmedian(ref[white.used])
        ref = ref / norm
        with np.errstate(invalid="ignore", divide="ignore"):
            flux = visit.flux / ref
            rel = visit.flux_err / np.abs(visit.flux)
            err = np.abs(flux) * np.sqrt(rel ** 2 + extra ** 2)
        mask = visit.mask & white.used & np.isfinite(flux)
        out.append(replace(visit, flux=flux, flux_err=err, mask=mask, t0=white.t0))
    return out


def fit_channel(visits, white_fit: TransitFit, *, common_mode="model", systematics=None,
                reduced=COMMON_MODE_BASIS, **options) -> TransitFit:
    """Fit one channel over the visits, with or without the white light's common mode.

    Parameters
    ----------
    visits : Visit or sequence of Visit
        The channel's light curve per visit (the white fit's order).
    white_fit : TransitFit
        Supplies the mid-transit times, a/R* and inclination (fixed here).
    common_mode : {"none", "model", "empirical"}
        ``none``: the channel with ``systematics`` (its full basis);
        otherwise divided first (:func:`common_mode_visits`) and fitted with
        ``reduced``.
    systematics : SystematicsSpec or sequence, optional
        Full basis for ``common_mode="none"`` (default ``SystematicsSpec()``);
        narrowed in each visit to the white fit's choice (:func:`_as_white`).
    reduced : SystematicsSpec or sequence
        Basis after the division.
    **options
        Passed to :func:`.fit.fit_light_curves` (mode, walkers, steps, burn,
        seed, inflate ...); ``free_t0`` and ``geometry_priors`` are not used.

    Returns
    -------
    TransitFit
    """
    if common_mode not in COMMON_MODES:
        raise PipelineError(f"channel fit: 'common_mode' must be one of {COMMON_MODES}, got "
                            f"{common_mode!r}")
    for key in ("free_t0", "geometry_priors"):
        options.pop(key, None)
    if common_mode == "none":
        visits = [replace(v, t0=w.t0) for v, w in zip(_check(visits, white_fit),
                                                       white_fit.visits)]
        specs = (list(systematics) if isinstance(systematics, (list, tuple))
                 else [systematics or SystematicsSpec()] * len(visits))
        if len(specs) != len(visits):
            raise PipelineError(f"channel fit: 'systematics' has {len(specs)} entries for "
                                f"{len(visits)} visits")
        # The basis the white light chose in each visit: its ramp (shape, timescale or degree
        # at most) and its trend degree at most.
        spec = [_as_white(s, w) for s, w in zip(specs, white_fit.visits)]
    else:
        visits = common_mode_visits(visits, white_fit, common_mode)
        spec = reduced
    return fit_light_curves(visits, white_fit.transit, spec, **options)


def _as_white(spec, white):
    """``spec`` narrowed to what the white light chose in a visit (:class:`.fit.VisitResult`):
    its ramp's shape with its timescale, or a polynomial of its degree at most, and a trend
    of its degree at most."""
    spec = replace(spec, visit_order=min(spec.visit_order, white.visit_order))
    if spec.ramp == "none":
        return spec
    if white.ramp == "exp" and white.timescale is not None:
        return replace(spec, ramp="exp", ramp_timescales=(white.timescale,))
    if white.ramp == "poly":
        return replace(spec, ramp="poly", ramp_order=white.ramp_order)
    return replace(spec, ramp="none")
