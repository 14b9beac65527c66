"""Stage 6: spectra and light curves, with what a systematics model needs per frame.

Every stage-5 Final Frame is extracted column by column, optimally (Horne
1986, :mod:`..science.extraction`: variance from stage 5's ``ERR`` plus the
signal's photon noise, iterated, outliers beyond ``extract_sigma`` rejected one
at a time) and by a plain box sum over the spectral mask.  The spatial profile
is the whole series' template (``extract_profile: template``: every frame's
trace aligned by its measured offset, median-combined, smoothed along the
columns, moved back to each frame) or the frame's own stage-4 model (``fit``).
The light curves follow (:mod:`..science.lightcurves`): white and channels
(``channel_width`` columns, or ``channel_wavelengths`` bands), normalised out
of transit.  The transit itself is fitted by stage 7.

Rank 0 reads and writes; the frames are scattered with
:func:`~.base.map_frames` twice (trace centroids and widths, then the
extraction), so the products do not depend on the number of ranks.

Outputs (a contract users' tools read):

- ``output_dir/spectra/<science file name>``: extension ``SPECTRUM``, one row
  per column: ``COLUMN``, ``WAVELENGTH`` (A, with a ``wavelength_solution``),
  ``FLUX``, ``FLUX_ERR`` (ADU per exposure), ``FLUX_BOX``, ``FLUX_BOX_ERR``,
  ``DQ`` (:class:`~..flags.SpectrumFlag`); readable with
  ``specutils.Spectrum.read(path, format="tabular-fits")``.
- ``output_dir/light_curves.fits``: ``LIGHTCURVES``, per frame in time order:
  ``FILE``, ``TIME`` (mid-exposure MJD), ``WHITE``, ``WHITE_ERR``,
  ``WHITE_BOX``, ``WHITE_BOX_ERR``, ``CHANNELS``, ``CHANNELS_ERR`` (normalised
  by the out-of-transit median), ``IN_TRANSIT`` (with a transit model), and
  the systematics regressors ``TRACE_OFFSET`` (rows, from the series'
  median), ``TRACE_WIDTH`` (rows, rms), ``CCDTEMP`` (``ccdtemp_key``),
  ``ORBIT`` (orbit window, from gaps longer than ``orbit_gap``),
  ``ORBIT_TIME`` (days since the window's first frame) and one column per
  ``header_regressors`` keyword; ``CHANNELS`` (each channel's columns and
  wavelengths).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import PipelineError
from ..flags import SpectrumFlag
from ..io.fitsio import check_frames, header_values
from ..io.products import (FinalFrame, Spectrum, light_curve_hdus, read_profile_fits,
                           read_spectral_mask)
from ..science import lightcurves as lc
from ..science.extraction import (box_extract, build_template, column_centroids, column_widths,
                                  fit_profile, optimal_extract, profile_for_frame, shift_rows,
                                  trace_offsets, trace_widths, usable_pixels)
from ..science.trace_profile import TemplateWarp, follow_frames, frame_profile
from ..science.transit_fit.orbits import find_orbits
from ..science.profiles import model_frame
from .base import FrameStage, map_frames

__all__ = ["Spectra", "frame_times", "check_wavelengths"]


def frame_times(cfg, paths):
    """Mid-exposure MJD of each science frame from ``time_key`` and ``exptime_key`` (NaN if absent)."""
    return lc.mid_exposure(header_values(paths, cfg.time_key), header_values(paths, cfg.exptime_key))


def check_wavelengths(cfg, n_columns):
    """Wavelength of each column, or None; error naming the key if not increasing and positive."""
    wave = lc.wavelengths(cfg.wavelength_solution, np.arange(n_columns))
    if wave is not None and not (np.all(np.diff(wave) > 0) and wave[0] > 0):
        raise PipelineError(f"{cfg.source}: key 'wavelength_solution' {list(cfg.wavelength_solution)} "
                            f"does not give positive wavelengths increasing with the column "
                            f"(got {wave[0]:.6g} to {wave[-1]:.6g} A)")
    return wave


def _transit_shape(cfg, times, paths):
    """The transit shape at the frames' times, checked: every frame timed, some frames in
    and some out of transit."""
    if cfg.transit is None:
        return None
    untimed = np.flatnonzero(~np.isfinite(times))
    if len(untimed):
        raise PipelineError(f"{paths[untimed[0]]}: no '{cfg.time_key}' header keyword, needed by "
                            f"transit_model: {cfg.transit_model} (key 'time_key')")
    shape = lc.transit_shape(cfg.transit, cfg.transit_mid, times)
    if not (shape > 0).any() or (shape > 0).all():
        where = "no" if not (shape > 0).any() else "every"
        raise PipelineError(f"{cfg.source}: key 'transit_mid' ({cfg.transit_mid}) puts {where} "
                            f"frame in transit (frames span MJD {np.min(times):.5f} to "
                            f"{np.max(times):.5f})")
    return shape


def channel_edges(cfg, n_columns, wave):
    """The channels' half-open column ranges: ``channel_wavelengths`` bands, else
    ``channel_width`` columns; a band off the detector is one error naming the key."""
    if cfg.channel_wavelengths is None:
        return lc.channel_edges(n_columns, cfg.channel_width)
    try:
        return lc.band_edges(wave, cfg.channel_wavelengths)
    except ValueError as exc:
        raise PipelineError(f"{cfg.source}: key 'channel_wavelengths': {exc}") from None


def frame_regressors(cfg, paths, times):
    """What a systematics model needs per frame, from the headers and the times: the CCD
    temperature, the orbit window and the time since its start, ``header_regressors``."""
    orbits = find_orbits(times, cfg.orbit_gap)
    out = {"ORBIT": orbits.number.astype(np.int32), "ORBIT_TIME": orbits.since_start,
           "CCDTEMP": header_values(paths, cfg.ccdtemp_key)}
    for key in cfg.header_regressors:
        values = header_values(paths, key)
        missing = np.flatnonzero(~np.isfinite(values))
        if len(missing):
            raise PipelineError(f"{paths[missing[0]]}: no numeric '{key}' header keyword (key "
                                f"'header_regressors' in {cfg.source})")
        out[key.upper()] = values
    return out


def _read_final(path):
    """A stage-5 Final Frame with its ``ERR`` and ``DQ`` (float32 stack of 3)."""
    frame = FinalFrame.read(path)
    return np.stack([frame.data, frame.err, frame.dq.astype(np.float32)])


class Spectra(FrameStage):
    """Stage 6: optimal and box spectra of every frame, light curves and depths."""

    number = 6

    def check(self):
        cfg, layout = self.cfg, self.layout
        for p in self.science:
            FinalFrame.check(layout.final(p))
        self.region = read_spectral_mask(layout.matches)
        check_frames(map(layout.final, self.science), self.region.shape)
        self.wave = check_wavelengths(cfg, self.region.shape[1])
        self.times = frame_times(cfg, self.science)
        self.shape = _transit_shape(cfg, self.times, self.science)
        self.edges = channel_edges(cfg, self.region.shape[1], self.wave)
        self.regressors = frame_regressors(cfg, self.science, self.times)

    def prepare(self):
        """Pass 1: every frame's trace centroids and widths, scattered (the trace's offset
        and width per frame; the template profile from the frames aligned by the offsets)."""
        self.region = self.comm.bcast(self.region if self.rank0 else None)
        self.offsets = self.widths = self.template = None
        self._frames = {}                  # rank 0: frames read in pass 1, by index
        cents = {}

        def read(i):                    # rank 0 keeps each frame for the extraction
            self._frames[i] = _read_final(self.layout.final(self.science[i]))
            return self._frames[i][0]

        def centroids(stack):
            c, f = column_centroids(stack, self.region)
            return {"centroid": c, "flux": f, "width": column_widths(stack, self.region, c)}

        def keep(i, out):
            cents[i] = out

        map_frames(self.comm, len(self.science), read, centroids, keep)
        if self.rank0:
            n = len(self.science)
            flux = np.array([cents[i]["flux"] for i in range(n)])
            self.offsets = trace_offsets(np.array([cents[i]["centroid"] for i in range(n)]), flux)
            self.widths = trace_widths(np.array([cents[i]["width"] for i in range(n)]), flux)
            if self.cfg.extract_profile == "follow":
                self._follow()
            if self.cfg.extract_profile != "template":
                return
            aligned, filled = [], []
            for i in range(n):
                data, _, dq = self._frames[i]
                aligned.append(shift_rows(np.where(usable_pixels(data, dq), data, np.nan),
                                          -self.offsets[i]))
                filled.append(shift_rows(data, -self.offsets[i]))   # never-usable pixels' share
            self.template = build_template(np.array(aligned), self.region, self.cfg.profile_smooth,
                                           filled=np.array(filled))
            self.log.info("template profile from %d frames; trace offsets %.3f to %.3f rows",
                          n, self.offsets.min(), self.offsets.max())

    def _follow(self):
        """Rank 0: the template and each frame's offset, tilt and smear
        (:func:`~..science.trace_profile.follow_frames`); the offsets and widths become
        the regressors."""
        stack = np.array([self._frames[i] for i in range(len(self.science))])
        data, err, dq = stack[:, 0], stack[:, 1], stack[:, 2]
        usable = usable_pixels(data, dq) & self.region
        template, shape = follow_frames(data, err, usable, self.region, self.cfg.profile_smooth,
                                        offset=self.offsets)
        self.template, self.trace_shape = template, shape
        self.warp = TemplateWarp(template, self.region, spill=self.cfg.profile_spill)
        self.offsets, self.widths = shape.offset, shape.width
        self.log.info("profile follows each frame: offsets %.3f to %.3f rows, widths %.3f to "
                      "%.3f rows", shape.offset.min(), shape.offset.max(), shape.width.min(),
                      shape.width.max())

    def read_frame(self, i):
        src = self.science[i]
        frame = self._frames.pop(i, None)
        data, err, dq = frame if frame is not None else _read_final(self.layout.final(src))
        if self.cfg.extract_profile == "follow":
            profile = frame_profile(self.template, self.region, self.trace_shape, i, self.warp)
        elif self.cfg.extract_profile == "template":
            profile = profile_for_frame(self.template, self.offsets[i], self.region)
        else:
            fitted = read_profile_fits(self.layout.final_fits(src))
            fitted = dataclasses.replace(fitted, offset=np.zeros_like(fitted.offset))
            profile = fit_profile(model_frame(fitted, data.shape), self.region)
        return np.stack([data, err, dq, profile.astype(np.float32)])

    def process_frames(self, stack):
        # One frame at a time: numpy's reductions over a stack can round differently
        # with the stack's size, and the products must not depend on the ranks.
        names = ("flux", "flux_err", "box", "box_err", "dq", "rejected", "err_scale")
        per_frame = [self._extract(*(layer.astype(float) for layer in frame)) for frame in stack]
        n_cols = stack.shape[-1]
        empty = {"dq": np.zeros((0, n_cols), np.uint8), "rejected": np.zeros((0, n_cols), np.int32),
                 "err_scale": np.zeros(0)}
        return {name: (np.array([r[name] for r in per_frame]) if per_frame
                       else empty.get(name, np.zeros((0, n_cols)))) for name in names}

    def _extract(self, data, err, dq, profile):
        cfg, region = self.cfg, self.region
        usable = usable_pixels(data, dq) & region
        opt = optimal_extract(data, err, profile, usable, cfg.gain, sigma=cfg.extract_sigma,
                              rescale=cfg.extract_error_scale, err_has_signal=True)
        # ERR is stage 5's whole error model (photon noise included).
        box, box_err = box_extract(data, err * opt.err_scale, region, cfg.gain, err_has_signal=True)
        flags = opt.flags(cfg.extract_min_weight)
        touched = (~usable_pixels(data, dq) & region).any(axis=0)
        flags[touched] |= np.uint8(SpectrumFlag.INFILLED)
        return {"flux": opt.flux, "flux_err": opt.flux_err, "box": box, "box_err": box_err,
                "dq": flags, "rejected": opt.n_rejected.astype(np.int32),
                "err_scale": float(opt.err_scale)}

    def write_frame(self, i, out):
        src = self.science[i]
        obs = self.observation_header(src)
        spectrum = Spectrum(out["flux"], out["flux_err"], out["box"], out["box_err"], out["dq"],
                            wavelength=self.wave)
        hdr = obs.copy()
        hdr["PROFILE"] = (self.cfg.extract_profile, "spatial profile of the optimal extraction")
        hdr["NREJECT"] = (int(out["rejected"].sum()), "pixels rejected as outliers")
        hdr["ERRSCALE"] = (float(out["err_scale"]), "factor on stage 5's ERR")
        hdr["TRACEOFF"] = (float(self.offsets[i]), "[rows] trace offset from the median")
        hdr["TRACEWID"] = (float(self.widths[i]), "[rows] trace width")
        if np.isfinite(self.times[i]):
            hdr["MJD-MID"] = (float(self.times[i]), "mid-exposure MJD")
        self.write("spectra", frame=src, header=hdr, extensions=[spectrum.to_hdu(obs)])

    def finish(self):
        """Rank 0: light curves from the (staged) spectra of every frame."""
        regressors = {"TRACE_OFFSET": self.offsets, "TRACE_WIDTH": self.widths, **self.regressors}
        _write_series(self, self.science, self.times, self.shape, self.wave, self.edges,
                      regressors)
        self.log.info("wrote %d spectra under %s and %s", len(self.science),
                      self.layout.spectra(self.science[0]).parent, self.layout.light_curves.name)


#: Units of the per-frame regressor columns of ``LIGHTCURVES``.
_REGRESSOR_UNITS = {"TRACE_OFFSET": "pix", "TRACE_WIDTH": "pix", "ORBIT_TIME": "d",
                    "CCDTEMP": "deg_C"}


def _write_series(stage, paths, times, shape, wave, edges, regressors):
    """Rank 0: light curves (and the frames' regressors) from the staged spectra."""
    cfg = stage.cfg
    spectra = [Spectrum.read(stage.staged_path("spectra", p)) for p in paths]
    flux = np.array([s.flux for s in spectra])
    flux_err = np.array([s.flux_err for s in spectra])
    box = np.array([s.box for s in spectra])
    box_err = np.array([s.box_err for s in spectra])
    order = np.argsort(times, kind="stable") if np.isfinite(times).all() else np.arange(len(paths))
    dq = np.array([s.dq for s in spectra])
    few = (dq & int(SpectrumFlag.LOW_WEIGHT | SpectrumFlag.NO_DATA)) != 0
    flux, flux_err = lc.fill_columns(flux, flux_err, few)
    flux, flux_err, box, box_err = flux[order], flux_err[order], box[order], box_err[order]
    times = times[order]
    shape = None if shape is None else shape[order]
    out_of_transit = None if shape is None else shape <= 1e-9
    ok = lc.usable_columns(flux)
    white, white_err, chans, chans_err = lc.bin_channels(flux, flux_err, edges, ok)
    wbox, wbox_err, _, _ = lc.bin_channels(box, box_err, edges, lc.usable_columns(box))
    if cfg.channel_wavelengths is not None:       # the white light: every usable column
        white, white_err = np.nansum(np.where(ok, flux, 0.0), axis=1), np.sqrt(
            np.nansum(np.where(ok, flux_err, 0.0) ** 2, axis=1))
        bok = lc.usable_columns(box)
        wbox, wbox_err = np.nansum(np.where(bok, box, 0.0), axis=1), np.sqrt(
            np.nansum(np.where(bok, box_err, 0.0) ** 2, axis=1))
    white, white_err = lc.normalise(white, white_err, out_of_transit)
    wbox, wbox_err = lc.normalise(wbox, wbox_err, out_of_transit)
    chans, chans_err = lc.normalise(chans, chans_err, out_of_transit)

    lcs = Table()
    lcs["FILE"] = [paths[i].name for i in order]
    lcs["TIME"] = times
    lcs["TIME"].unit = "d"
    lcs["WHITE"], lcs["WHITE_ERR"] = white, white_err
    lcs["WHITE_BOX"], lcs["WHITE_BOX_ERR"] = wbox, wbox_err
    lcs["CHANNELS"], lcs["CHANNELS_ERR"] = chans, chans_err
    if shape is not None:
        lcs["IN_TRANSIT"] = shape > 1e-9
    for name, values in regressors.items():
        lcs[name] = np.asarray(values)[order]
        if name in _REGRESSOR_UNITS:
            lcs[name].unit = _REGRESSOR_UNITS[name]
    chan_table = _channel_table(edges, ok, wave)
    hdr = fits.Header()
    hdr["NFRAMES"] = (len(paths), "frames")
    hdr["NCOLUSED"] = (int(ok.sum()), "columns with a finite flux in every frame")
    hdr["NFILLED"] = (int(few.sum()), "sparse column fluxes filled")
    hdr["NORBITS"] = (int(len(np.unique(regressors["ORBIT"]))), "orbit windows (orbit_gap)")
    hdr["TMODEL"] = (cfg.transit_model, "transit model (out-of-transit normalisation)")
    stage.write("light_curves", header=hdr, extensions=light_curve_hdus(lcs, chan_table))


def _channel_table(edges, ok, wave):
    """Each channel's index, inclusive column range, wavelengths and usable columns."""
    table = Table()
    table["CHANNEL"] = np.arange(len(edges), dtype=np.int32)
    table["COLUMN_LO"] = edges[:, 0].astype(np.int32)
    table["COLUMN_HI"] = (edges[:, 1] - 1).astype(np.int32)
    table["WAVELENGTH_LO"] = np.nan if wave is None else wave[edges[:, 0]]
    table["WAVELENGTH_HI"] = np.nan if wave is None else wave[edges[:, 1] - 1]
    table["WAVELENGTH_LO"].unit = table["WAVELENGTH_HI"].unit = "Angstrom"
    table["N_COLUMNS"] = [int(ok[lo:hi].sum()) for lo, hi in edges]
    return table
