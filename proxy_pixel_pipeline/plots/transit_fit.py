"""Figures of stage 7 (the transit and systematics fit), from its products only.

- ``transit_fit_visits.png`` (:func:`plot_visits`): each visit's white light
  curve as fitted, with the fitted systematics times transit model, the
  systematics alone and the orbit windows;
- ``transit_fit_detrended.png`` (:func:`plot_detrended`): the detrended white
  light curves of all visits folded on the transit, with the model, and the
  residuals;
- ``transit_fit_rms.png`` (:func:`plot_residual_rms`): each visit's residual
  RMS against bin size, with the white-noise expectation
  (:func:`~proxy_pixel_pipeline.science.transit_fit.red_noise`);
- ``transit_fit_corner.png`` (:func:`plot_corner`): the white fit's posterior
  (``corner``);
- ``transmission_spectrum.png`` (:func:`plot_transmission_spectrum`): Rp/R*
  of every channel against wavelength, the white value as a band, Mg II and
  Fe II marked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.transit_products import read_depths, read_samples, read_transit_fit
from ..science.transit_fit import find_orbits, red_noise
from .drawing import XLABEL, new_figure
from .inputs import FigureSpec

__all__ = ["VISITS", "DETRENDED", "RESIDUAL_RMS", "CORNER", "TRANSMISSION_SPECTRUM",
           "plot_visits", "plot_detrended", "plot_residual_rms", "plot_corner",
           "plot_transmission_spectrum", "LINES"]

VISITS = FigureSpec("transit_fit_visits.png", needs=("transit_fit",))
DETRENDED = FigureSpec("transit_fit_detrended.png", needs=("transit_fit",))
RESIDUAL_RMS = FigureSpec("transit_fit_rms.png", needs=("transit_fit",))
CORNER = FigureSpec("transit_fit_corner.png", needs=("transit_samples",))
TRANSMISSION_SPECTRUM = FigureSpec("transmission_spectrum.png", needs=("transit_depths",))

#: Lines marked on the transmission spectrum: name -> vacuum wavelength, A.
LINES = {"Mg II k": 2796.35, "Mg II h": 2803.53, "Fe II 2586": 2586.65, "Fe II 2600": 2600.17,
         "Mg I": 2852.13}
_COLOURS = ("#1f4e9c", "#d9730d", "#2e8b57", "#8b1a1a", "#6a3d9a", "#555555")
WAVELABEL = "wavelength [Å]"


def _white(table):
    """Column 0 (the white light) of a ``DETRENDED_<visit>`` table, as float arrays."""
    return {key: np.asarray(table[key], float)[:, 0] for key in
            ("FLUX", "SYSTEMATICS", "TRANSIT", "DETRENDED", "DETRENDED_ERR", "RESIDUAL")} | {
        "TIME": np.asarray(table["TIME"], float),
        "USED": np.asarray(table["USED"], bool)[:, 0]}


def _t0s(visits):
    white = visits[[str(c).strip() == "white" for c in visits["CHANNEL"]]]
    return {str(v).strip(): float(t) for v, t in zip(white["VISIT"], white["T0"])}


@VISITS.draws
def plot_visits(config, out_dir=None) -> Path:
    """Each visit's white light curve as fitted, its systematics and transit model.

    One panel per visit: the light curve (normalised by stage 6; frames left
    out of the fit hollow), the fitted model (systematics times transit,
    line), the systematics alone (dashed), the orbit windows (``orbit_gap``, as
    stage 6 finds them; shaded alternately), against hours from the visit's fitted mid-transit time.
    """
    run = VISITS.open(config, out_dir=out_dir)
    visits, detrended = read_transit_fit(run.paths["transit_fit"])
    t0s = _t0s(visits)
    fig = new_figure((10, 2.6 * len(detrended) + 0.8))
    axes = np.atleast_1d(fig.subplots(len(detrended), 1, sharex=True))
    for ax, (name, table) in zip(axes, detrended.items()):
        w = _white(table)
        hours = (w["TIME"] - t0s[name]) * 24.0
        orbit = find_orbits(w["TIME"], run.cfg.orbit_gap).number   # stage 6's windows
        _orbit_windows(ax, hours, orbit)
        used = w["USED"]
        ax.plot(hours[used], w["FLUX"][used], "o", color=_COLOURS[0], ms=4, label="white light")
        ax.plot(hours[~used], w["FLUX"][~used], "o", mfc="none", color=_COLOURS[0], ms=4,
                label="left out of the fit" if (~used).any() else None)
        x, model, sys = _broken_at_gaps(hours, orbit, w["SYSTEMATICS"] * w["TRANSIT"],
                                        w["SYSTEMATICS"])
        ax.plot(x, model, "-", color="k", lw=1.1, label="systematics x transit")
        ax.plot(x, sys, "--", color=_COLOURS[1], lw=1, label="systematics")
        ax.set_ylabel("flux")
        ax.set_title(f"{name}: white light curve and its fit", fontsize=9, loc="left")
    # above the top panel, right of its title: the data keep the whole frame
    axes[0].legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3,
                   frameon=False)
    axes[-1].set_xlabel("hours from the fitted mid-transit time")
    return run.save(fig)


def _broken_at_gaps(hours, orbit, *series):
    """``hours`` and ``series`` in time order with a NaN between orbit windows (``orbit``,
    each frame's window), so that a line is not drawn across the gaps."""
    order = np.argsort(hours)
    cut = np.flatnonzero(np.diff(orbit[order]) != 0) + 1
    return (np.insert(hours[order], cut, np.nan),
            *(np.insert(np.asarray(y, float)[order], cut, np.nan) for y in series))


def _orbit_windows(ax, hours, orbit):
    """Shade each orbit window (``orbit``, each frame's window), alternately."""
    for k, number in enumerate(np.unique(orbit[orbit >= 0])):
        inside = hours[orbit == number]
        ax.axvspan(inside.min(), inside.max(), color="0.93" if k % 2 == 0 else "0.87",
                   zorder=0, lw=0)


@DETRENDED.draws
def plot_detrended(config, out_dir=None) -> Path:
    """The detrended white light curves of all visits folded on the transit, the model and
    the residuals (parts per thousand)."""
    run = DETRENDED.open(config, out_dir=out_dir)
    visits, detrended = read_transit_fit(run.paths["transit_fit"])
    depths = read_depths(run.layout.transit_depths) if run.layout.transit_depths.is_file() else None
    t0s = _t0s(visits)
    fig = new_figure((10, 7))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1],
                                                               "hspace": 0.06})
    model_x, model_y = [], []
    for k, (name, table) in enumerate(detrended.items()):
        w = _white(table)
        used = w["USED"]
        hours = (w["TIME"] - t0s[name]) * 24.0
        colour = _COLOURS[k % len(_COLOURS)]
        top.errorbar(hours[used], w["DETRENDED"][used], w["DETRENDED_ERR"][used], fmt="o",
                     ms=3.5, capsize=1.5, color=colour, label=name)
        bottom.errorbar(hours[used], 1e3 * w["RESIDUAL"][used], 1e3 * w["DETRENDED_ERR"][used],
                        fmt="o", ms=3.5, capsize=1.5, color=colour)
        model_x.append(hours[used])
        model_y.append(w["TRANSIT"][used])
    x, y = np.concatenate(model_x), np.concatenate(model_y)
    order = np.argsort(x)
    label = "transit model"
    if depths is not None:
        label += (f": Rp/R* {depths['RP_RS'][0]:.4f} -{depths['RP_RS_ERR_LO'][0]:.4f} "
                  f"+{depths['RP_RS_ERR_HI'][0]:.4f}")
    top.plot(x[order], y[order], "-", color="k", lw=1.2, label=label)
    bottom.axhline(0, color="k", lw=0.8)
    top.set_ylabel("detrended flux")
    top.set_title(f"White light, {len(detrended)} visit(s) folded on the transit, "
                  f"systematics divided out", fontsize=10)
    top.legend(fontsize=8, loc="lower left")
    bottom.set_ylabel("residual [ppt]")
    bottom.set_xlabel("hours from each visit's fitted mid-transit time")
    return run.save(fig)


@RESIDUAL_RMS.draws
def plot_residual_rms(config, out_dir=None) -> Path:
    """Each visit's white-light residual RMS against bin size, with the white-noise
    expectation: red noise lifts the measured curve above it."""
    run = RESIDUAL_RMS.open(config, out_dir=out_dir)
    visits, detrended = read_transit_fit(run.paths["transit_fit"])
    fig = new_figure((7.5, 5))
    ax = fig.add_subplot()
    for k, (name, table) in enumerate(detrended.items()):
        w = _white(table)
        used = w["USED"]
        test = red_noise(w["RESIDUAL"][used], w["TIME"][used])
        colour = _COLOURS[k % len(_COLOURS)]
        ax.loglog(test.bin_sizes, 1e6 * test.rms, "o-", color=colour, ms=4,
                  label=f"{name} (beta {test.beta:.2f})")
        ax.loglog(test.bin_sizes, 1e6 * test.expected, ":", color=colour)
    ax.set_xlabel("frames per bin")
    ax.set_ylabel("RMS of the binned residuals [ppm]")
    ax.set_title("White-light residuals against bin size (dotted: white noise)", fontsize=10)
    ax.legend(fontsize=8)
    return run.save(fig)


@CORNER.draws
def plot_corner(config, out_dir=None) -> Path:
    """The white fit's posterior samples, one panel per free parameter and pair (corner)."""
    import corner

    run = CORNER.open(config, out_dir=out_dir)
    white, _ = read_samples(run.paths["transit_samples"])
    names = list(white.colnames)
    samples = np.column_stack([np.asarray(white[n], float) for n in names])
    shown = [n if not n.startswith("t0_") else f"{n} [min]" for n in names]
    for j, n in enumerate(names):                 # mid-transit times as minutes from the median
        if n.startswith("t0_"):
            samples[:, j] = (samples[:, j] - np.median(samples[:, j])) * 1440.0
    size = max(4.0, 2.2 * len(names))
    fig = new_figure((size, size))
    corner.corner(samples, labels=shown, fig=fig, quantiles=(0.16, 0.5, 0.84), title_fmt=".4f",
                  show_titles=True, title_kwargs={"fontsize": 8}, label_kwargs={"fontsize": 8})
    return run.save(fig)


@TRANSMISSION_SPECTRUM.draws
def plot_transmission_spectrum(config, out_dir=None) -> Path:
    """Rp/R* of every channel against wavelength, the white light's as a band, lines marked.

    Each channel of ``transit_depths.fits`` is a point at the middle of its
    band (column range without a wavelength solution), the horizontal bar its
    band, the vertical bar the 16-84 % interval of Rp/R*.
    """
    run = TRANSMISSION_SPECTRUM.open(config, out_dir=out_dir)
    depths = read_depths(run.paths["transit_depths"])
    names = [str(c).strip() for c in depths["CHANNEL"]]
    white = names.index("white") if "white" in names else None
    chans = np.array([i for i, n in enumerate(names) if n != "white"], int)
    lo, hi = (np.asarray(depths[k], float) for k in ("WAVELENGTH_LO", "WAVELENGTH_HI"))
    xlabel, waves = WAVELABEL, True
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        lo, hi = (np.asarray(depths[k], float) for k in ("COLUMN_LO", "COLUMN_HI"))
        xlabel, waves = XLABEL, False
    rp = np.asarray(depths["RP_RS"], float)
    err = np.stack([np.asarray(depths["RP_RS_ERR_LO"], float),
                    np.asarray(depths["RP_RS_ERR_HI"], float)])

    fig = new_figure((10, 5))
    ax = fig.add_subplot()
    if white is not None:
        ax.axhspan(rp[white] - err[0, white], rp[white] + err[1, white], color="0.88", zorder=0)
        ax.axhline(rp[white], color="0.3", lw=1,
                   label=f"white light: {rp[white]:.4f} -{err[0, white]:.4f} "
                         f"+{err[1, white]:.4f}")
    mid = (lo[chans] + hi[chans]) / 2
    narrow = np.zeros(len(chans), bool)          # a line's band among broader channels
    if run.cfg.channel_wavelengths is not None and len(chans):
        narrow = (hi[chans] - lo[chans]) < 0.5 * np.median(hi[chans] - lo[chans])
    for subset, colour, what in ((~np.asarray(narrow, bool), _COLOURS[0], "channels"),
                                 (np.asarray(narrow, bool), _COLOURS[3], "narrow bands")):
        if len(chans) and subset.any():
            i = chans[subset]
            ax.errorbar(mid[subset], rp[i], yerr=err[:, i], xerr=(hi[i] - lo[i]) / 2, fmt="o",
                        color=colour, ms=5, capsize=3, label=f"{what} (bar: band, 16-84 %)")
    if waves:
        span = (np.nanmin(lo), np.nanmax(hi))
        for k, (name, wave) in enumerate(LINES.items()):
            if span[0] <= wave <= span[1]:
                ax.axvline(wave, color="0.55", lw=0.8, ls="--")
                ax.annotate(name, (wave, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(2, -10 - 9 * (k % 2)), textcoords="offset points",
                            fontsize=7, color="0.35")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Rp/R*")
    ax.set_title(f"Transmission spectrum ({run.cfg.transit_model} transit, "
                 f"{int(depths['N_VISITS'][0])} visit(s), channels: "
                 f"{run.cfg.channel_common_mode} common mode)", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return run.save(fig)
