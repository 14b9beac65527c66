"""Stage 2: a Background Frame and a Final Frame for every science frame.

Outputs (a contract other tools read): ``output_dir/background/<science
file name>`` and ``output_dir/final_no_infill/<science file name>``, the image
in the primary HDU.  With K > 1 proxies the background file also holds the
background's per-pixel one-sigma uncertainty (extension ``BKG_ERR``, ADU: the
standard error of the K proxies' combination from their spread, and the error
of their matched level), for spectrum extraction.

Before any frame is made, rank 0 reads every proxy's values over all science
frames and finds the values hit by a cosmic ray (:func:`..frames.proxy_hits`);
those are dropped from that frame's background, and the background file's
``PROXYHIT`` extension counts, per spectral pixel, the proxies dropped.

With at least ``proxy_series_min_frames`` science frames, rank 0 also fits
every proxy pixel over the frames (:mod:`..science.proxy_series`: the frame's
smooth excess and dark-level term, the pixel's own level and temperature
response) and the background takes each proxy's modelled value instead of its
noisy reading (headers ``PXSERIES``, ``PXSOWN``, ``PXSCOHER``).

With ``scattered_light_order`` > 0 each frame's smooth excess over the darks'
median is fitted to its non-spectral pixels and each spectral pixel's
background corrected by that field's difference between it and its proxies
(:mod:`..science.scattered_light`); the fit's gradients and temperature slope
go into the background file's header (``SLGRADX``, ``SLGRADY``, ``SLTSLOPE``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from ..io.fitsio import check_frames, header_values, read_image
from ..io.products import read_dark_median, read_matches
from ..runtime.parallel import bcast_array
from ..science.background import background_frame, final_frame, proxy_hits
from ..science.proxy_series import model_proxy_series
from ..science.scattered_light import fit_excess, proxy_correction
from .base import FrameStage

__all__ = ["FinalFrames"]


class FinalFrames(FrameStage):
    """Stage 2: Background Frame and Final Frame of every science frame."""

    number = 2

    def check(self):
        self.shape = self.cfg.pixel_list("spectral_mask").shape
        check_frames(self.science, self.shape)

    def prepare(self):
        cfg, comm, log = self.cfg, self.comm, self.log
        spectral = proxy = offsets = n_darks = level_bias = shape = dark_median = usable = None
        pixel_noise = None
        cross_fit = False
        proxy_flat = self.hit_pixels = self.series = None         # hits, series: rank 0 only
        if self.rank0:
            spectral, proxy, table = read_matches(self.layout.matches)
            shape = self.shape
            res_median, n_samples = (np.asarray(table[c], float).reshape(proxy.shape[:2])
                                     for c in ("RES_MEDIAN", "N_SAMPLES"))
            has = proxy[..., 0] >= 0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # pixels without any proxy: NaN
                n_darks = np.nanmedian(np.where(has, n_samples, np.nan), axis=1)
                level_bias = np.nanmean(np.where(has, res_median, np.nan), axis=1)
            if cfg.proxy_offset:
                offsets, level_bias = res_median, np.zeros_like(level_bias)
            log.info("%d science frames, %d spectral pixels, %d proxies each",
                     len(self.science), len(spectral), proxy.shape[1])
            matches_header = fits.getheader(self.layout.matches)
            _warn_if_beyond_dark_temperatures(matches_header, self.science, cfg.ccdtemp_key, log)
            cross_fit = bool(matches_header.get("XFIT", False))
            proxy_flat = np.where(has, np.ravel_multi_index(
                (np.where(has, proxy[..., 0], 0), np.where(has, proxy[..., 1], 0)), shape), -1)
            if cfg.scattered_light_order > 0 or self._series_modelled():
                dark_median, usable = read_dark_median(self.layout.matches)
            self.hit_pixels, self.series = _proxy_series(
                cfg, self.science, proxy_flat, table, dark_median if self._series_modelled()
                else None, usable, log)
            if self.series is not None:
                res_std = np.asarray(table["RES_STD"], float).reshape(proxy.shape[:2])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    pixel_noise = np.nanmedian(np.where(has, res_std, np.nan), axis=1) / np.sqrt(2)
        self.spectral = bcast_array(comm, spectral)
        self.proxy = bcast_array(comm, proxy)
        self.proxy_flat = bcast_array(comm, proxy_flat)    # flat index of each proxy, -1: none
        self.offsets = bcast_array(comm, offsets) if cfg.proxy_offset else None
        self.n_darks = bcast_array(comm, n_darks)
        self.level_bias = bcast_array(comm, level_bias)
        self.shape = comm.bcast(shape)
        # Proxies from their series' model scatter less than a pixel: the background's
        # uncertainty takes one pixel's noise from the matches' residuals over the darks.
        self.pixel_noise = (bcast_array(comm, pixel_noise)
                            if comm.bcast(pixel_noise is not None) else None)
        self.cross_fit = comm.bcast(cross_fit)
        self.dark_median = self.excess_usable = None
        if cfg.scattered_light_order > 0:
            self.dark_median = bcast_array(comm, dark_median)
            self.excess_usable = bcast_array(comm, usable)
        # A pixel is never quieter than its read noise plus rounding to integer ADU.
        self.noise_floor = float(np.hypot(cfg.read_noise / cfg.gain, np.sqrt(1 / 12)))
        # One proxy has no spread to measure: no error frame to compute, gather or write.
        self.with_error = self.proxy.shape[1] > 1

    def _series_modelled(self):
        n = self.cfg.proxy_series_min_frames
        return n > 0 and len(self.science) >= n

    def read_frame(self, i):
        image = read_image(self.science[i], self.cfg.missing_value,   # shape checked up front
                           warn_negative=i == 0)
        if self.series is not None:                    # each proxy's value from its series' model
            image.ravel()[self.series.pixels] = self.series.values[:, i]
        image.ravel()[self.hit_pixels[i]] = np.nan        # proxies hit by a cosmic ray here: dropped
        if np.isnan(image).all():
            self.log.warning("%s: every pixel is missing", self.science[i])
        return image

    def process_frames(self, stack):
        names = ("background", "final") + (("error",) if self.with_error else ())
        out = {name: np.empty(stack.shape, np.float32) for name in names}
        out["excess"] = np.full((len(stack), 4), np.nan)    # gradients x, y, slope, pixels fitted
        for k, science in enumerate(stack):
            field = None
            if self.dark_median is not None:
                field = fit_excess(science, self.dark_median, self.excess_usable,
                                   self.cfg.scattered_light_order)
            out["background"][k], error = background_frame(
                science, self.spectral, self.proxy, self.cfg.proxy_combine, self.offsets,
                self.n_darks, self.level_bias, self.noise_floor,
                clip_sigma=self.cfg.proxy_clip_sigma, cross_fit=self.cross_fit,
                offset_scale=1.0 if field is None else field.offset_scale,
                pixel_noise=self.pixel_noise)
            if field is not None:
                out["excess"][k] = self._correct_excess(field, science, out["background"][k])
            if self.with_error:
                out["error"][k] = error
            out["final"][k] = final_frame(science, out["background"][k])
        return out

    def _correct_excess(self, field, science, background):
        """Add to one frame's background (in place) the smooth excess over the darks at each
        spectral pixel minus at its proxies (the dark-level term scaled the offsets)."""
        sy, sx = self.spectral[:, 0], self.spectral[:, 1]
        has = self.proxy_flat >= 0
        valid = has & np.isfinite(science.ravel()[np.where(has, self.proxy_flat, 0)])
        background[sy, sx] += proxy_correction(field, self.spectral, self.proxy, valid)
        return (*field.gradients, field.temperature_slope, field.n_used)

    def write_frame(self, i, out):
        src = self.science[i]
        header = self.observation_header(src)
        gx, gy, slope, n_fit = out["excess"]
        if n_fit > 0:
            header["SLGRADX"] = (round(float(gx), 4), "[adu] excess over darks, first to last column")
            header["SLGRADY"] = (round(float(gy), 4), "[adu] excess over darks, first to last row")
            header["SLTSLOPE"] = (round(float(slope), 6), "excess per adu dark level; offsets x (1 + this)")
            header["SLNFIT"] = (int(n_fit), "pixels fitted for the excess over darks")
        ext = []
        if self.with_error:
            ext = [fits.ImageHDU(out["error"], name="BKG_ERR")]
            ext[0].header["BUNIT"] = "adu"
            ext[0].header["COMMENT"] = ("one-sigma uncertainty of the background from the proxies' "
                                        "spread and matched level")
        dropped = np.zeros(self.shape, np.uint8)
        dropped[self.spectral[:, 0], self.spectral[:, 1]] = np.isin(
            self.proxy_flat, self.hit_pixels[i]).sum(axis=1)
        ext.append(fits.ImageHDU(dropped, name="PROXYHIT"))
        ext[-1].header["COMMENT"] = ("proxies of the pixel dropped in this frame: a cosmic ray on the "
                                     "proxy (outlier of its science series)")
        header["NPROXHIT"] = (len(self.hit_pixels[i]), "proxy values dropped (cosmic-ray hits)")
        header["PXSERIES"] = (self.series is not None, "proxies' values from their series' model")
        if self.series is not None:
            header["PXSOWN"] = (round(self.series.own_share, 4), "mean share of a proxy's own value kept")
            header["PXSCOHER"] = (round(self.series.coherence, 3),
                                  "use-weighted residual variance / its noise's")
        self.write("background", out["background"], frame=src, header=header, extensions=ext,
                   bunit="adu")
        self.write("final_no_infill", out["final"], frame=src, header=header, bunit="adu")

    def finish(self):
        self.log.info("wrote %d background and final frames under %s", len(self.science),
                      self.layout.root)


@dataclass
class ProxySeries:
    """Rank 0: the proxies' modelled values (:func:`..science.proxy_series.model_proxy_series`)."""

    pixels: np.ndarray            # flat indices of the proxy pixels
    values: np.ndarray            # (n_pixels, n_frames), ADU
    own_share: float
    coherence: float


def _proxy_series(cfg, science_paths, proxy_flat, table, dark_median, usable, log):
    """Rank 0: for each science frame, the pixels (flat indices) whose proxy value is a hit;
    and, with ``dark_median`` given, the proxies' values from their series' model
    (a :class:`ProxySeries`, else None)."""
    pixels, where, uses = np.unique(proxy_flat[proxy_flat >= 0], return_inverse=True,
                                    return_counts=True)
    empty = [np.zeros(0, np.intp)] * len(science_paths)
    find_hits = (cfg.proxy_hit_sigma > 0 and len(science_paths) >= cfg.temporal_min_frames
                 and len(pixels))
    if not len(pixels) or (not find_hits and dark_median is None):
        return empty, None
    series = np.empty((len(pixels), len(science_paths)), np.float32)
    fields = []
    for f, path in enumerate(science_paths):
        image = read_image(path, cfg.missing_value, warn_negative=False)
        series[:, f] = image.ravel()[pixels]
        if dark_median is not None:
            fields.append(fit_excess(image, dark_median, usable, cfg.scattered_light_order))
    hits = _hits(cfg, series, where, proxy_flat, table, log) if find_hits else None
    modelled = None
    if dark_median is not None and all(field is not None for field in fields):
        rows, columns = np.unravel_index(pixels, dark_median.shape)
        smooth = np.stack([field.spatial(rows, columns) + field.shrunk[0] for field in fields], 1)
        values, info = model_proxy_series(
            series, smooth, [field.temperature_slope for field in fields], hits,
            min_frames=cfg.proxy_series_min_frames, weights=uses)
        modelled = ProxySeries(pixels, values.astype(np.float32), info["own_share"],
                               info["coherence"])
        log.info("proxies' values from their series' model: %d pixels over %d frames, own share "
                 "kept %.3f, use-weighted residual variance %.2f x its noise's", len(pixels),
                 len(science_paths), info["own_share"], info["coherence"])
        if info["coherent"]:
            log.warning("the proxies' residuals from their series' model share structure over "
                        "the frames (%.1f x their noise; PXSCOHER): light or a level the smooth "
                        "excess does not describe, or starlight on candidates near the trace; "
                        "proxy_series_min_frames: 0 gives the frames' own values for a "
                        "comparison (docs/unbiased_fluxes.md)", info["coherence"])
    elif dark_median is not None:
        log.warning("proxies' series not modelled: too few usable pixels for a frame's excess fit")
    if hits is None:
        return empty, modelled
    return [pixels[hits[:, f]] for f in range(len(science_paths))], modelled


def _hits(cfg, series, where, proxy_flat, table, log):
    """The proxy values (pixels x frames) that are cosmic-ray hits."""
    # A proxy's own noise: its match residual's std over the darks holds two pixels' noise.
    noise = np.full(len(series), np.inf)
    res_std = np.asarray(table["RES_STD"], float).reshape(proxy_flat.shape)[proxy_flat >= 0]
    np.fmin.at(noise, where, res_std / np.sqrt(2.0))
    noise[~np.isfinite(noise)] = np.nan
    hits = proxy_hits(series, noise, cfg.proxy_hit_sigma, cfg.temporal_min_frames)
    log.info("proxy values dropped as cosmic-ray hits: %d of %d (%.2g)", int(hits.sum()),
             hits.size, hits.mean())
    return hits


#: Science frames this far (degC) beyond the darks' CCD temperatures get a warning.
TEMPERATURE_MARGIN = 0.5


def _warn_if_beyond_dark_temperatures(header, science_paths, key, log):
    """Warn when science frames are warmer or colder than every dark (``key``: ccdtemp_key;
    ``header``: the match table's primary header)."""
    if "DTEMPMIN" not in header:
        return
    low, high = header["DTEMPMIN"], header["DTEMPMAX"]
    temps = header_values(science_paths, key)
    beyond = np.fmax(temps - high, low - temps)          # NaN where a frame has no CCDTEMP
    outside = beyond > TEMPERATURE_MARGIN
    if outside.any():
        log.warning("%d of %d science frames lie up to %.1f degC outside the darks' CCD "
                    "temperatures (%.1f to %.1f degC): their background extrapolates each "
                    "pixel's temperature law and is less accurate (docs/proxy_count.md); "
                    "darks spanning the science temperatures avoid this",
                    int(outside.sum()), len(temps), float(np.nanmax(beyond)), low, high)

