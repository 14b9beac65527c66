"""Stage 7: the transit and each visit's systematics, fitted to the white and channel light curves.

Rank 0 reads stage 6's ``light_curves.fits`` of this visit and of every visit
in ``joint_visits`` (each checked current, as a stage checks its inputs).
Every rank fits the white light curves of all visits jointly
(:func:`~..science.transit_fit.fit_light_curves`: Rp/R* shared, each visit's
systematics solved exactly for each trial transit, optionally its mid-transit
time and the orbit's a/R* and inclination free), with the same seed, so they
all hold the same white fit.  The channels are then spread over the ranks in
contiguous runs (each channel seeded from its index: the results do not
depend on the ranks), fitted with the white light's common mode divided out
(or with the full basis, ``channel_common_mode``), packed into fixed-size
records and gathered with ``Gatherv``; rank 0 writes the products
(:mod:`..io.transit_products`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import PipelineError
from ..io.products import read_light_curves
from ..io.transit_products import (MAX_SAMPLES, depths_hdu, samples_hdus, transit_fit_hdus)
from ..runtime import lineage
from ..runtime.config import load_config
from ..runtime.layout import Layout
from ..runtime.parallel import gather_rows, partition
from ..science.transit_fit import (OFFSET, TEMPERATURE, WIDTH, SystematicsSpec, Visit,
                                   fit_channel, fit_light_curves)
from .base import StageRunner

__all__ = ["TransitFit"]

#: Light-curve columns of the built-in regressors (:mod:`..science.transit_fit.systematics`).
_REGRESSOR_COLUMNS = {OFFSET: "TRACE_OFFSET", WIDTH: "TRACE_WIDTH", TEMPERATURE: "CCDTEMP"}


class TransitFit(StageRunner):
    """Stage 7: transit depths per channel, one visit or several jointly."""

    number = 7

    # ------------------------------------------------------------ inputs
    def check(self):
        cfg = self.cfg
        if cfg.transit is None:
            raise PipelineError(f"{cfg.source}: key 'transit_model' is none; stage 7 fits a "
                                f"transit: set box or batman")
        self.visit_configs = [cfg] + [self._joint_visit(path) for path in cfg.joint_visits]
        names = [_visit_name(c) for c in self.visit_configs]
        self.names = [n if names.count(n) == 1 else f"{n}_{k + 1}" for k, n in enumerate(names)]
        self.data = [_read_visit(c) for c in self.visit_configs]
        self.t0s = [c.transit_mid for c in self.visit_configs]
        _check_channels(self.visit_configs, self.data)

    def _joint_visit(self, path):
        """The config of a visit in ``joint_visits``, its stage-6 light curves checked."""
        where = f"{self.cfg.source}: key 'joint_visits'"
        try:
            other = load_config(path)
            layout = Layout(other.output_dir)
            lineage.check_product(other, layout, "light_curves", layout.light_curves,
                                  other.science_paths())
        except PipelineError as exc:
            raise PipelineError(f"{where}: {path}: not ready for stage 7 ({exc})") from None
        if other.transit_mid is None:
            raise PipelineError(f"{where}: {path} has no transit_mid")
        return other

    def input_files(self, frame=None):
        files = super().input_files(frame)
        joint = getattr(self, "visit_configs", [self.cfg])[1:]
        return files + [Layout(c.output_dir).light_curves for c in joint]

    # ------------------------------------------------------------- the work
    def process(self):
        cfg, comm = self.cfg, self.comm
        shared = comm.bcast((self.names, self.data, self.t0s) if self.rank0 else None)
        self.names, self.data, self.t0s = shared
        spec = _systematics(cfg)
        options = _options(cfg)
        white_visits = [_visit(d, n, d["WHITE"], d["WHITE_ERR"], t0)
                        for d, n, t0 in zip(self.data, self.names, self.t0s)]
        # Every rank fits the white light, with the same seed: the same result everywhere.
        white = fit_light_curves(white_visits, cfg.transit, spec, free_t0=cfg.fit_mid_time,
                                 t0_window=cfg.mid_time_window,
                                 geometry_priors=_geometry_priors(cfg),
                                 seed=(cfg.fit_seed, 0), **options)
        if self.rank0:
            self.log.info("white light: Rp/R* %.5f -%.5f +%.5f over %d visit(s)%s", white.rp_rs,
                          white.rp_rs_err_lo, white.rp_rs_err_hi, len(white_visits),
                          "; " + "; ".join(white.warnings) if white.warnings else "")
        n_chan = self.data[0]["CHANNELS"].shape[1]
        counts = partition(n_chan, comm.size)
        first = int(np.sum(counts[:comm.rank]))
        layout = _RecordLayout(self.data)
        mine = np.zeros(counts[comm.rank], layout.dtype)
        for k in range(counts[comm.rank]):
            channel = first + k
            visits = [_visit(d, n, d["CHANNELS"][:, channel], d["CHANNELS_ERR"][:, channel], t0)
                      for d, n, t0 in zip(self.data, self.names, self.t0s)]
            if not all(np.isfinite(v.flux[v.usable]).any() for v in visits):
                mine[k] = layout.empty()
                continue
            fit = fit_channel(visits, white, common_mode=cfg.channel_common_mode,
                              systematics=spec, seed=(cfg.fit_seed, channel + 1), **options)
            mine[k] = layout.pack(fit)
        records = gather_rows(comm, mine, counts)
        if self.rank0:
            self._write(white, layout.pack(white), records, layout)

    # --------------------------------------------------------------- output
    def _write(self, white, white_record, records, layout):
        cfg = self.cfg
        all_records = np.concatenate([white_record[None], records])
        chans = self.data[0]["CHANNEL_TABLE"]
        depths = Table()
        depths["CHANNEL"] = ["white"] + [str(int(c)) for c in chans["CHANNEL"]]
        for key in ("WAVELENGTH_LO", "WAVELENGTH_HI", "COLUMN_LO", "COLUMN_HI"):
            white_value = (np.nanmin(chans[key]) if key.endswith("LO") else np.nanmax(chans[key]))
            depths[key] = np.r_[white_value, np.asarray(chans[key])]
        depths["WAVELENGTH_LO"].unit = depths["WAVELENGTH_HI"].unit = "Angstrom"
        r = all_records
        depths["RP_RS"] = r["rp_rs"]
        depths["RP_RS_ERR_LO"] = r["rp_rs"] - r["p16"]
        depths["RP_RS_ERR_HI"] = r["p84"] - r["rp_rs"]
        depths["DEPTH"], depths["DEPTH_ERR"] = r["depth"], r["depth_err"]
        depths["CHI2"], depths["BIC"] = r["chi2"], r["bic"]
        depths["N_VISITS"] = np.full(len(r), len(self.names), np.int16)
        depths["AUTOCORR"], depths["CONVERGED"] = r["tau"], r["converged"].astype(bool)
        hdr = fits.Header()
        hdr["NVISITS"] = (len(self.names), "visits fitted jointly")
        for i, (name, c) in enumerate(zip(self.names, self.visit_configs)):
            hdr[f"VISIT{i + 1}"] = (name, Path(c.source).name)
        hdr["SAMPLER"] = (cfg.fit_sampler, "posterior: emcee or least squares")
        hdr["CMODE"] = (cfg.channel_common_mode, "channels: common mode divided out")
        hdr["WRP_RS"] = (float(white.rp_rs), "white-light Rp/R*")
        hdr["WDEPTH"] = (float(white.depth), "white-light depth")
        hdr["WDEPTHER"] = (float(white.depth_err), "its 1-sigma error")
        self.write("transit_depths", header=hdr, extensions=[depths_hdu(depths, cfg.transit_model)])
        visits, detrended = layout.tables(all_records, depths["CHANNEL"], self.names, self.data)
        self.write("transit_fit", header=hdr, extensions=transit_fit_hdus(visits, detrended))
        white_samples = Table(np.asarray(white.samples), names=list(white.parameter_names))
        shdr = fits.Header()
        shdr["WALKERS"] = (white.walkers, "emcee walkers (white fit)")
        shdr["STEPS"] = (white.steps, "steps per walker, burn-in included")
        shdr["BURN"] = (white.burn, "steps discarded")
        self.write("transit_samples", header=hdr,
                   extensions=samples_hdus(white_samples, r["samples"], shdr))
        self.log.info("wrote %s: white Rp/R* %.5f +- %.5f, %d channels",
                      self.layout.transit_depths.name, white.rp_rs, white.rp_rs_err, len(records))


# ------------------------------------------------------------------ helpers
def _visit_name(cfg):
    """A visit's name: its config's folder (``visit2``), else the config file's stem."""
    folder = Path(cfg.source).resolve().parent.name
    return folder or Path(cfg.source).stem


def _read_visit(cfg):
    """Rank 0: a visit's light curves and regressors as plain arrays."""
    lcs, chans = read_light_curves(Layout(cfg.output_dir).light_curves)
    data = {name: np.asarray(lcs[name], float) for name in
            ("TIME", "WHITE", "WHITE_ERR", "CHANNELS", "CHANNELS_ERR")}
    if data["CHANNELS"].ndim == 1:
        data["CHANNELS"], data["CHANNELS_ERR"] = data["CHANNELS"][:, None], data["CHANNELS_ERR"][:, None]
    for name in ("ORBIT", "ORBIT_TIME", *_REGRESSOR_COLUMNS.values(),
                 *(k.upper() for k in cfg.header_regressors)):
        if name in lcs.colnames:
            data[name] = np.asarray(lcs[name], float)
    data["CHANNEL_TABLE"] = {k: np.asarray(chans[k]) for k in
                             ("CHANNEL", "COLUMN_LO", "COLUMN_HI", "WAVELENGTH_LO", "WAVELENGTH_HI")}
    data["EXTRA"] = {k: k.upper() for k in cfg.systematics_extra}
    return data


def _check_channels(configs, data):
    """Every visit has the same channels (their wavelengths within half a column)."""
    ref = data[0]["CHANNEL_TABLE"]
    for cfg, d in zip(configs[1:], data[1:]):
        other = d["CHANNEL_TABLE"]
        same = len(other["CHANNEL"]) == len(ref["CHANNEL"]) and all(
            np.allclose(other[k], ref[k], atol=1.0, equal_nan=True)
            for k in ("WAVELENGTH_LO", "WAVELENGTH_HI"))
        if not same:
            raise PipelineError(f"{cfg.source}: its light curves' channels differ from "
                                f"{configs[0].source}'s (channel_width / channel_wavelengths)")


def _visit(data, name, flux, flux_err, t0):
    regressors = {key: data[col] for key, col in _REGRESSOR_COLUMNS.items() if col in data}
    regressors.update({key: data[col] for key, col in data["EXTRA"].items() if col in data})
    orbit = data.get("ORBIT")
    return Visit(times=data["TIME"], flux=flux, flux_err=flux_err, t0=t0, regressors=regressors,
                 orbit=None if orbit is None else orbit.astype(int),
                 since_start=data.get("ORBIT_TIME"), name=name)


def _systematics(cfg):
    return SystematicsSpec(ramp=cfg.systematics_ramp, ramp_order=cfg.systematics_ramp_order,
                           ramp_timescales=cfg.systematics_ramp_timescales or (10.0,),
                           first_orbit=cfg.systematics_first_orbit,
                           visit_order=cfg.systematics_visit_order,
                           offset_order=cfg.systematics_offset_order,
                           width_order=cfg.systematics_width_order,
                           temperature_order=cfg.systematics_temperature_order,
                           extra=tuple(cfg.systematics_extra))


def _options(cfg):
    return dict(mode="emcee" if cfg.fit_sampler == "emcee" else "lsq",
                walkers=cfg.emcee_walkers or None, steps=cfg.emcee_steps, burn=cfg.emcee_burn,
                inflate=cfg.inflate_errors)


def _geometry_priors(cfg):
    if not cfg.fit_geometry:
        return None
    return {"a_rs": (cfg.planet_a_rs, cfg.planet_a_rs_err),
            "inclination": (cfg.planet_inclination, cfg.planet_inclination_err)}


class _RecordLayout:
    """One fit (white or a channel) as a fixed-size numpy record, so that the channels'
    results travel with ``Gatherv``; and the records as the products' tables."""

    _SCALARS = ("rp_rs", "p16", "p84", "depth", "depth_err", "chi2", "bic", "tau", "converged")
    _PER_VISIT = ("t0", "t0_err", "v_chi2", "dof", "v_bic", "beta", "error_scale", "timescale",
                  "n_used")
    _PER_FRAME = ("used", "flux", "systematics", "transit", "detrended", "detrended_err",
                  "residual")
    _NAMES = 512
    _COEFS = 48

    def __init__(self, data):
        self.n_visits = len(data)
        self.n_frames = max(len(d["TIME"]) for d in data)
        v, f = self.n_visits, self.n_frames
        self.dtype = np.dtype(
            [(k, "f8") for k in self._SCALARS] + [(k, "f8", (v,)) for k in self._PER_VISIT]
            + [("coef_names", f"U{self._NAMES}", (v,)), ("coef", "f8", (v, self._COEFS)),
               ("coef_err", "f8", (v, self._COEFS))]
            + [(k, "f8", (v, f)) for k in self._PER_FRAME]
            + [("samples", "f4", (MAX_SAMPLES,))])

    def empty(self):
        rec = np.zeros((), self.dtype)
        for name in self.dtype.names:
            if name != "coef_names":
                rec[name] = np.nan
        return rec

    def pack(self, fit):
        rec = self.empty()
        for key in ("rp_rs", "depth", "depth_err", "chi2", "bic"):
            rec[key] = getattr(fit, key)
        rec["p16"], rec["p84"] = fit.rp_rs_p16, fit.rp_rs_p84
        rec["tau"] = (np.nanmax(fit.autocorr_time) if fit.autocorr_time is not None
                      and np.size(fit.autocorr_time) else np.nan)
        rec["converged"] = float(fit.autocorr_ok)
        for i, v in enumerate(fit.visits):
            for key, attr in (("t0", "t0"), ("t0_err", "t0_err"), ("v_chi2", "chi2"),
                              ("dof", "dof"), ("v_bic", "bic"), ("beta", "beta"),
                              ("error_scale", "error_scale"), ("n_used", "n_used")):
                rec[key][i] = getattr(v, attr)
            rec["timescale"][i] = np.nan if v.timescale is None else v.timescale
            names = ",".join(v.coefficient_names)
            if len(names) > self._NAMES or len(v.coefficients) > self._COEFS:
                raise PipelineError(f"stage 7: {len(v.coefficients)} systematics coefficients "
                                    f"are more than the products hold ({self._COEFS})")
            rec["coef_names"][i] = names
            rec["coef"][i, :len(v.coefficients)] = v.coefficients
            rec["coef_err"][i, :len(v.coefficients)] = v.coefficient_errors
            n = len(v.times)
            rec["used"][i, :n] = v.used
            rec["flux"][i, :n] = v.detrended * v.systematics          # the flux as fitted
            for key in ("systematics", "transit", "detrended", "detrended_err"):
                rec[key][i, :n] = getattr(v, key)
            rec["residual"][i, :n] = v.residuals
        samples = np.asarray(fit.samples, float)
        rp = samples[:, list(fit.parameter_names).index("rp_rs")] if len(samples) else samples
        step = max(1, int(np.ceil(len(rp) / MAX_SAMPLES)))
        kept = rp[::step][:MAX_SAMPLES]
        rec["samples"][:len(kept)] = kept
        return rec

    def tables(self, records, channels, names, data):
        """The ``VISITS`` table and each visit's ``DETRENDED`` table of ``records`` (white
        first)."""
        rows = Table()
        n_v = self.n_visits
        rows["CHANNEL"] = np.repeat(np.asarray(channels), n_v)
        rows["VISIT"] = np.tile(np.asarray(names), len(records))
        for col, key in (("T0", "t0"), ("T0_ERR", "t0_err"), ("CHI2", "v_chi2"), ("DOF", "dof"),
                         ("BIC", "v_bic"), ("BETA", "beta"), ("ERROR_SCALE", "error_scale"),
                         ("TIMESCALE", "timescale"), ("N_USED", "n_used")):
            rows[col] = records[key].reshape(-1)
        rows["T0"].unit = rows["T0_ERR"].unit = "d"
        rows["TIMESCALE"].unit = "min"
        rows["COEF_NAMES"] = records["coef_names"].reshape(-1)
        width = max(1, max((len(str(n).split(",")) for n in rows["COEF_NAMES"] if n), default=1))
        rows["COEF"] = records["coef"].reshape(-1, self._COEFS)[:, :width]
        rows["COEF_ERR"] = records["coef_err"].reshape(-1, self._COEFS)[:, :width]
        detrended = {}
        for i, (name, d) in enumerate(zip(names, data)):
            n = len(d["TIME"])
            table = Table()
            table["TIME"] = d["TIME"]
            table["TIME"].unit = "d"
            for key in self._PER_FRAME:
                values = records[key][:, i, :n].T          # frames x (white + channels)
                table[key.upper()] = values.astype(bool) if key == "used" else values
            detrended[name] = table
        return rows, detrended
