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
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits

from ..io.fitsio import (check_frames, header_values, observation_header, read_image, read_mask,
                       write_fits)
from ..science.background import background_frame, final_frame, proxy_hits
from ..runtime.layout import Layout
from ..runtime.logs import get_logger
from ..runtime.parallel import bcast_array
from ..io.products import read_matches
from ..runtime.staging import StagedOutputs
from .common import check_previous, map_frames, match_inputs

__all__ = ["run"]


def run(cfg, comm, overwrite=False):
    """Run stage 2 over all science frames.

    Parameters
    ----------
    cfg : Config
    comm : MPI communicator
    overwrite : bool
        Replace existing output frames.
    """
    log = get_logger()
    layout = Layout(cfg.output_dir)
    science_paths = spectral = proxy = shape = offsets = n_darks = level_bias = staged = None
    proxy_flat = hit_pixels = None                      # rank 0 only
    finished = False
    if comm.rank == 0:
        # Every input checked before anything is written.
        check_previous(layout.matches, cfg, 1, raw_inputs=match_inputs(cfg))
        science_paths = cfg.science_paths()
        shape = read_mask(cfg.spectral_mask).shape
        check_frames(science_paths, shape)
        staged = StagedOutputs(cfg, 2, inputs=[layout.matches], science_paths=science_paths)
        finished = staged.begin(overwrite)
    if comm.bcast(finished):
        return
    if comm.rank == 0:
        spectral, proxy, table = read_matches(layout.matches)
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
                 len(science_paths), len(spectral), proxy.shape[1])
        _warn_if_beyond_dark_temperatures(layout.matches, science_paths, cfg.ccdtemp_key, log)
        proxy_flat = np.where(has, np.ravel_multi_index(
            (np.where(has, proxy[..., 0], 0), np.where(has, proxy[..., 1], 0)), shape), -1)
        hit_pixels = _find_proxy_hits(cfg, science_paths, proxy_flat, table, log)
    science_paths = comm.bcast(science_paths)
    spectral = bcast_array(comm, spectral)
    proxy = bcast_array(comm, proxy)
    if cfg.proxy_offset:
        offsets = bcast_array(comm, offsets)
    n_darks = bcast_array(comm, n_darks)
    level_bias = bcast_array(comm, level_bias)
    shape = comm.bcast(shape)

    def read(i):
        image = read_image(science_paths[i], cfg.missing_value)   # shape checked up front
        image.ravel()[hit_pixels[i]] = np.nan        # proxies hit by a cosmic ray here: dropped
        if np.isnan(image).all():
            log.warning("%s: every pixel is missing", science_paths[i])
        return image

    # A pixel is never quieter than its read noise plus rounding to integer ADU.
    noise_floor = float(np.hypot(cfg.read_noise / cfg.gain, np.sqrt(1 / 12)))

    # One proxy has no spread to measure: no error frame to compute, gather or write.
    with_error = proxy.shape[1] > 1
    names = ("background", "final") + (("error",) if with_error else ())

    def compute(stack):
        out = {name: np.empty(stack.shape, np.float32) for name in names}
        for k, science in enumerate(stack):
            out["background"][k], error = background_frame(
                science, spectral, proxy, cfg.proxy_combine, offsets, n_darks, level_bias, noise_floor)
            if with_error:
                out["error"][k] = error
            out["final"][k] = final_frame(science, out["background"][k])
        return out

    def write(i, out):
        src = science_paths[i]
        header = observation_header(src, cfg)
        ext = []
        if with_error:
            ext = [fits.ImageHDU(out["error"], name="BKG_ERR")]
            ext[0].header["BUNIT"] = "adu"
            ext[0].header["COMMENT"] = ("one-sigma uncertainty of the background from the proxies' "
                                        "spread and matched level")
        dropped = np.zeros(shape, np.uint8)
        dropped[spectral[:, 0], spectral[:, 1]] = np.isin(proxy_flat, hit_pixels[i]).sum(axis=1)
        ext.append(fits.ImageHDU(dropped, name="PROXYHIT"))
        ext[-1].header["COMMENT"] = ("proxies of the pixel dropped in this frame: a cosmic ray on the "
                                     "proxy (outlier of its science series)")
        header["NPROXHIT"] = (len(hit_pixels[i]), "proxy values dropped (cosmic-ray hits)")
        write_fits(staged.layout.background(src), out["background"], stage=2, config=cfg,
                   inputs=[src, layout.matches],
                   header=header, extensions=ext, bunit="adu")
        write_fits(staged.layout.final_no_infill(src), out["final"], stage=2, config=cfg,
                   inputs=[src, layout.matches],
                   header=header, bunit="adu")

    map_frames(comm, len(science_paths), read, compute, write,
               done=lambda i: staged.frame_done(science_paths[i]))
    if comm.rank == 0:
        staged.commit()
        log.info("wrote %d background and final frames under %s", len(science_paths), layout.root)


def _find_proxy_hits(cfg, science_paths, proxy_flat, table, log):
    """Rank 0: for each science frame, the pixels (flat indices) whose proxy value is a hit."""
    pixels, where = np.unique(proxy_flat[proxy_flat >= 0], return_inverse=True)
    empty = [np.zeros(0, np.intp)] * len(science_paths)
    if cfg.proxy_hit_sigma <= 0 or len(science_paths) < cfg.temporal_min_frames or not len(pixels):
        return empty
    series = np.empty((len(pixels), len(science_paths)), np.float32)
    for f, path in enumerate(science_paths):
        series[:, f] = read_image(path, cfg.missing_value).ravel()[pixels]
    # A proxy's own noise: its match residual's std over the darks holds two pixels' noise.
    noise = np.full(len(pixels), np.inf)
    res_std = np.asarray(table["RES_STD"], float).reshape(proxy_flat.shape)[proxy_flat >= 0]
    np.fmin.at(noise, where, res_std / np.sqrt(2.0))
    noise[~np.isfinite(noise)] = np.nan
    hits = proxy_hits(series, noise, cfg.proxy_hit_sigma, cfg.temporal_min_frames)
    log.info("proxy values dropped as cosmic-ray hits: %d of %d (%.2g)", int(hits.sum()),
             hits.size, hits.mean())
    return [pixels[hits[:, f]] for f in range(len(science_paths))]


#: Science frames this far (degC) beyond the darks' CCD temperatures get a warning.
TEMPERATURE_MARGIN = 0.5


def _warn_if_beyond_dark_temperatures(matches, science_paths, key, log):
    """Warn when science frames are warmer or colder than every dark (``key``: ccdtemp_key)."""
    header = fits.getheader(matches)
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

