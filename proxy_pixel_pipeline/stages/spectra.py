"""Stage 6: spectra, light curves and transit depths.

Every stage-5 Final Frame is extracted column by column, optimally (Horne
1986, :mod:`..extraction`: variance from stage 5's ``ERR`` plus the signal's
photon noise, iterated, outliers beyond ``extract_sigma`` rejected one at a
time) and by a plain box sum over the spectral mask.  The spatial profile is
the whole series' template (``extract_profile: template``: every frame's trace
aligned by its measured offset, median-combined, smoothed along the columns,
moved back to each frame) or the frame's own stage-4 model (``fit``).  Light
curves and depths follow (:mod:`..lightcurves`).

Rank 0 reads and writes; the frames are scattered with
:func:`~.common.map_frames` twice (trace centroids for the template, then the
extraction), so the products do not depend on the number of ranks.

Outputs (a contract users' tools read):

- ``output_dir/spectra/<science file name>``: extension ``SPECTRUM``, one row
  per column: ``COLUMN``, ``WAVELENGTH`` (A, with a ``wavelength_solution``),
  ``FLUX``, ``FLUX_ERR`` (ADU per exposure), ``FLUX_BOX``, ``FLUX_BOX_ERR``,
  ``DQ`` (:class:`~..flags.SpectrumFlag`); readable with
  ``specutils.Spectrum.read(path, format="tabular-fits")``.
- ``output_dir/light_curves.fits``: ``LIGHTCURVES`` (per frame ``FILE``,
  ``TIME``, ``WHITE``, ``WHITE_ERR``, ``WHITE_BOX``, ``WHITE_BOX_ERR``,
  ``CHANNELS``, ``CHANNELS_ERR``, normalised by the out-of-transit median) and
  ``CHANNELS`` (each channel's columns and wavelengths).
- ``output_dir/transit_depths.fits`` (with a ``transit_model``): ``DEPTHS``,
  one row per channel, ``"white"`` first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..science import lightcurves as lc
from ..runtime import registry
from ..errors import PipelineError
from ..science.extraction import (box_extract, build_template, column_centroids, fit_profile,
                          optimal_extract, profile_for_frame, shift_rows, trace_offsets,
                          usable_pixels)
from ..io.fitsio import (check_frames, header_values, observation_header, read_image, read_table,
                       write_fits)
from ..flags import SpectrumFlag, flagdoc
from ..runtime.layout import Layout
from ..runtime.logs import get_logger
from ..io.products import read_profile_fits, read_spectral_mask
from ..science.profiles import model_frame
from ..runtime.staging import StagedOutputs
from .common import check_previous, map_frames

__all__ = ["run", "read_final", "frame_times", "check_wavelengths"]


def read_final(path):
    """A stage-5 Final Frame with its ``ERR`` and ``DQ`` extensions (float32 stack of 3).

    Raises
    ------
    PipelineError
        The file lacks ``ERR`` or ``DQ`` (made before stage 5 wrote them).
    """
    data = read_image(path)
    with fits.open(path, memmap=False) as hdul:
        _need_err_dq(path, {h.name for h in hdul})
        err, dq = hdul["ERR"].data, hdul["DQ"].data
    if err.shape != data.shape or dq.shape != data.shape:
        raise PipelineError(f"{path}: ERR/DQ shape differs from the image's {data.shape}; "
                            f"rerun {registry.stage(5).script}")
    return np.stack([data, err.astype(np.float32), dq.astype(np.float32)])


def _check_final_extensions(path):
    with fits.open(path, lazy_load_hdus=True) as hdul:
        _need_err_dq(path, {h.name for h in hdul})


def _need_err_dq(path, names):
    missing = [name for name in ("ERR", "DQ") if name not in names]
    if missing:
        raise PipelineError(f"{path}: no {'/'.join(missing)} extension (made by an older "
                            f"stage 5); rerun {registry.stage(5).script}")


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
    if cfg.transit_model == "none":
        return None
    untimed = np.flatnonzero(~np.isfinite(times))
    if len(untimed):
        raise PipelineError(f"{paths[untimed[0]]}: no '{cfg.time_key}' header keyword, needed by "
                            f"transit_model: {cfg.transit_model} (key 'time_key')")
    shape = lc.transit_shape(cfg, times)
    if not (shape > 0).any() or (shape > 0).all():
        where = "no" if not (shape > 0).any() else "every"
        raise PipelineError(f"{cfg.source}: key 'transit_mid' ({cfg.transit_mid}) puts {where} "
                            f"frame in transit (frames span MJD {np.min(times):.5f} to "
                            f"{np.max(times):.5f})")
    return shape


def run(cfg, comm, overwrite=False):
    """Run stage 6.

    Parameters
    ----------
    cfg : Config
    comm : MPI communicator
    overwrite : bool
        Replace existing outputs.
    """
    log = get_logger()
    layout = Layout(cfg.output_dir)
    paths = region = staged = wave = times = shape = None
    finished = False
    if comm.rank == 0:
        check_previous(layout.matches, cfg, 1)
        paths = cfg.science_paths()
        for p in paths:
            check_previous(layout.final_fits(p), cfg, 4, made_from=[layout.final_no_infill(p)])
            check_previous(layout.final(p), cfg, 5, made_from=[layout.final_fits(p)])
            _check_final_extensions(layout.final(p))
        region = read_spectral_mask(layout.matches)
        check_frames(map(layout.final, paths), region.shape)
        wave = check_wavelengths(cfg, region.shape[1])
        times = frame_times(cfg, paths)
        shape = _transit_shape(cfg, times, paths)
        staged = StagedOutputs(cfg, 6, science_paths=paths,
                               skip=("transit_depths",) if shape is None else (),
                               inputs=[layout.matches, *map(layout.final, paths),
                                       *map(layout.final_fits, paths)])
        finished = staged.begin(overwrite)
    if comm.bcast(finished):
        return
    paths = comm.bcast(paths)
    region = comm.bcast(region)

    # ---- pass 1 (template only): every frame's trace centroids, scattered
    offsets = template = None
    if cfg.extract_profile == "template":
        cents = {}

        def read_image_only(i):
            return read_image(layout.final(paths[i]))

        def centroids(stack):
            c, f = column_centroids(stack, region)
            return {"centroid": c, "flux": f}

        def keep(i, out):
            cents[i] = out

        map_frames(comm, len(paths), read_image_only, centroids, keep)
        if comm.rank == 0:
            offsets = trace_offsets(np.array([cents[i]["centroid"] for i in range(len(paths))]),
                                    np.array([cents[i]["flux"] for i in range(len(paths))]))
            aligned = []
            for i, p in enumerate(paths):
                data, _, dq = read_final(layout.final(p))
                aligned.append(shift_rows(np.where(usable_pixels(data, dq), data, np.nan), -offsets[i]))
            template = build_template(np.array(aligned), region, cfg.profile_smooth)
            log.info("template profile from %d frames; trace offsets %.3f to %.3f rows",
                     len(paths), offsets.min(), offsets.max())

    # ---- pass 2: extraction, scattered
    def read(i):
        src = paths[i]
        data, err, dq = read_final(layout.final(src))
        if cfg.extract_profile == "template":
            profile = profile_for_frame(template, offsets[i], region)
        else:
            fitted = read_profile_fits(layout.final_fits(src))
            fitted = dataclasses.replace(fitted, offset=np.zeros_like(fitted.offset))
            profile = fit_profile(model_frame(fitted, data.shape), region)
        return np.stack([data, err, dq, profile.astype(np.float32)])

    def compute(stack):
        # One frame at a time: numpy's reductions over a stack can round differently
        # with the stack's size, and the products must not depend on the ranks.
        names = ("flux", "flux_err", "box", "box_err", "dq", "rejected", "err_scale")
        per_frame = [extract_frame(*(layer.astype(float) for layer in frame)) for frame in stack]
        n_cols = stack.shape[-1]
        empty = {"dq": np.zeros((0, n_cols), np.uint8), "rejected": np.zeros((0, n_cols), np.int32),
                 "err_scale": np.zeros(0)}
        return {name: (np.array([r[name] for r in per_frame]) if per_frame
                       else empty.get(name, np.zeros((0, n_cols)))) for name in names}

    def extract_frame(data, err, dq, profile):
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

    def write(i, out):
        src = paths[i]
        table = Table()
        table["COLUMN"] = np.arange(len(out["flux"]), dtype=np.int32)
        if wave is None:
            table["COLUMN"].unit = "pix"        # specutils' spectral axis without wavelengths
        else:
            table["WAVELENGTH"] = wave
            table["WAVELENGTH"].unit = "Angstrom"
        for name, key in (("FLUX", "flux"), ("FLUX_ERR", "flux_err"), ("FLUX_BOX", "box"),
                          ("FLUX_BOX_ERR", "box_err")):
            table[name] = out[key]
            table[name].unit = "adu"
        table["DQ"] = out["dq"]
        hdu = fits.table_to_hdu(table)
        hdu.name = "SPECTRUM"
        obs = observation_header(src, cfg)
        hdu.header.extend(obs.cards)
        hdu.header["FLAGDOC"] = (flagdoc(SpectrumFlag), "DQ bits")
        hdr = obs.copy()
        hdr["PROFILE"] = (cfg.extract_profile, "spatial profile of the optimal extraction")
        hdr["NREJECT"] = (int(out["rejected"].sum()), "pixels rejected as outliers")
        hdr["ERRSCALE"] = (float(out["err_scale"]), "factor on stage 5's ERR")
        if offsets is not None:
            hdr["TRACEOFF"] = (float(offsets[i]), "[rows] trace offset from the median")
        if np.isfinite(times[i]):
            hdr["MJD-MID"] = (float(times[i]), "mid-exposure MJD")
        write_fits(staged.layout.spectra(src), None, stage=6, config=cfg, header=hdr,
                   inputs=[layout.final(src), layout.final_fits(src)], extensions=[hdu])

    map_frames(comm, len(paths), read, compute, write, done=lambda i: staged.frame_done(paths[i]))
    if comm.rank == 0:
        _write_series(cfg, layout, staged, paths, times, shape, wave)
        staged.commit()
        log.info("wrote %d spectra under %s, %s%s", len(paths), layout.spectra(paths[0]).parent,
                 layout.light_curves.name, "" if shape is None else f", {layout.transit_depths.name}")


def _write_series(cfg, layout, staged, paths, times, shape, wave):
    """Rank 0: light curves and depths from the (staged) spectra of every frame."""
    log = get_logger()
    spectra = [read_table(staged.layout.spectra(p), "SPECTRUM") for p in paths]
    flux = np.array([np.asarray(t["FLUX"], float) for t in spectra])
    flux_err = np.array([np.asarray(t["FLUX_ERR"], float) for t in spectra])
    box = np.array([np.asarray(t["FLUX_BOX"], float) for t in spectra])
    box_err = np.array([np.asarray(t["FLUX_BOX_ERR"], float) for t in spectra])
    order = np.argsort(times, kind="stable") if np.isfinite(times).all() else np.arange(len(paths))
    dq = np.array([np.asarray(t["DQ"], int) for t in spectra])
    few = (dq & int(SpectrumFlag.LOW_WEIGHT | SpectrumFlag.NO_DATA)) != 0
    flux, flux_err = lc.fill_columns(flux, flux_err, few)
    flux, flux_err, box, box_err = flux[order], flux_err[order], box[order], box_err[order]
    times = times[order]
    shape = None if shape is None else shape[order]
    out_of_transit = None if shape is None else shape <= 1e-9
    edges = lc.channel_edges(flux.shape[1], cfg.channel_width)
    ok = lc.usable_columns(flux)
    white, white_err, chans, chans_err = lc.bin_channels(flux, flux_err, edges, ok)
    wbox, wbox_err, _, _ = lc.bin_channels(box, box_err, edges, lc.usable_columns(box))
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
    lc_hdu = fits.table_to_hdu(lcs)
    lc_hdu.name = "LIGHTCURVES"
    lc_hdu.header["COMMENT"] = "fluxes normalised by the out-of-transit median (all frames without a model)"
    chan_table = _channel_table(edges, ok, wave)
    ch_hdu = fits.table_to_hdu(chan_table)
    ch_hdu.name = "CHANNELS"
    ch_hdu.header["COMMENT"] = "COLUMN_LO..COLUMN_HI inclusive"
    inputs = [staged.layout.spectra(p) for p in paths]
    hdr = fits.Header()
    hdr["NFRAMES"] = (len(paths), "frames")
    hdr["NCOLUSED"] = (int(ok.sum()), "columns with a finite flux in every frame")
    hdr["NFILLED"] = (int(few.sum()), "sparse column fluxes filled")
    hdr["TMODEL"] = (cfg.transit_model, "transit model")
    write_fits(staged.layout.light_curves, None, stage=6, config=cfg, header=hdr,
               inputs=inputs, extensions=[lc_hdu, ch_hdu])
    if shape is None:
        return
    rows = [("white", lc.transit_depth(cfg, times, white))]
    rows += [(str(k), lc.transit_depth(cfg, times, chans[:, k])) for k in range(len(edges))]
    depths = Table()
    depths["CHANNEL"] = [name for name, _ in rows]
    lo = np.r_[int(np.flatnonzero(ok)[0]) if ok.any() else 0, chan_table["COLUMN_LO"]]
    hi = np.r_[int(np.flatnonzero(ok)[-1]) if ok.any() else len(ok) - 1, chan_table["COLUMN_HI"]]
    depths["COLUMN_LO"], depths["COLUMN_HI"] = lo.astype(np.int32), hi.astype(np.int32)
    wl = np.full(len(rows), np.nan) if wave is None else wave[lo]
    wh = np.full(len(rows), np.nan) if wave is None else wave[hi]
    depths["WAVELENGTH_LO"], depths["WAVELENGTH_HI"] = wl, wh
    depths["WAVELENGTH_LO"].unit = depths["WAVELENGTH_HI"].unit = "Angstrom"
    depths["DEPTH"] = [d.depth for _, d in rows]
    depths["DEPTH_ERR"] = [d.depth_err for _, d in rows]
    d_hdu = fits.table_to_hdu(depths)
    d_hdu.name = "DEPTHS"
    d_hdu.header["TMODEL"] = (cfg.transit_model, "transit model of the fit")
    hdr["WDEPTH"] = (rows[0][1].depth, "white-light transit depth")
    hdr["WDEPTHER"] = (rows[0][1].depth_err, "its 1-sigma error")
    write_fits(staged.layout.transit_depths, None, stage=6, config=cfg, header=hdr,
               inputs=[staged.layout.light_curves], extensions=[d_hdu])
    log.info("white-light depth %.5f +- %.5f (%s model)", rows[0][1].depth, rows[0][1].depth_err,
             cfg.transit_model)


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
