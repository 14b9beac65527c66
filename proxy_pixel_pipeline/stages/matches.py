"""Stage 1: match every spectral pixel with proxy pixels over the dark frames.

Rank 0 reads the darks and the spectral mask, flags unusable pixels and
broadcasts the candidates' dark series; spectral pixels are cut into blocks of
``block_size`` (fixed, so the result never depends on the number of ranks),
runs of blocks of equal work are scattered with ``Scatterv``, and the matches
are gathered with ``Gatherv`` and written by rank 0 as a FITS table.

With ``proxy_cross_fit`` (and K > 1) the candidates go out as two series, one
per interleaved half of the darks (:func:`..science.crossfit.dark_halves`),
and each block is matched by :func:`..science.crossfit.cross_fit_block`: K/2
proxies chosen on each half, their offsets measured on the other.  The
offsets' temperature coefficient (:func:`..science.crossfit.offset_temperature_sums`)
is summed block by block, in block order, into the header.
"""

from __future__ import annotations

import math
import time

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .. import __version__
from ..runtime.checkpoint import BlockStore, run_key
from ..errors import PipelineError
from ..flags import PixelFlag, flagdoc
from ..io.fitsio import header_values, read_stack, write_fits
from ..runtime.layout import Layout
from ..runtime.logs import Progress, get_logger
from ..io.pixel_lists import read_mask, read_pixels
from ..science.crossfit import (CROSS_FIT_MIN_DARKS, cross_fit_block, dark_halves,
                                 offset_temperature_sums, proxies_first)
from ..science.matching import CandidateSet, MatchResult, estimate_work, kernel_threads, match_block
from ..runtime.parallel import (bcast_array, gather_rows, limit_blas_threads, partition, scatter_rows,
                        threads_per_rank)
from ..science.pixel_quality import assess_pixels, centre_frames, near_mask
from ..runtime.lineage import raw_files
from ..runtime.staging import refuse_overwrite
from .base import StageRunner

__all__ = ["ProxyMatches"]

_FIELDS = ("index", "score", "median", "std", "n_samples")


def _prepare(cfg):
    """Rank 0: read inputs and return the series to match and the bookkeeping."""
    log = get_logger()
    dark_paths = cfg.dark_paths()
    darks = read_stack(dark_paths, cfg.missing_value)
    if len(darks) < cfg.min_valid_samples:
        raise PipelineError(
            f"config key 'dark_frames': {len(darks)} dark frames, fewer than "
            f"min_valid_samples = {cfg.min_valid_samples}")
    mask = read_mask(cfg.spectral_mask, darks.shape[1:])
    quality = assess_pixels(darks, cfg.hot_pixel_sigma, cfg.min_valid_samples)
    if cfg.exclude_pixels is not None:       # the original's excluded pixels: both sides
        excluded = read_pixels(cfg.exclude_pixels, darks.shape[1:])
        quality.flags[excluded] |= PixelFlag.EXCLUDED.value
    quality.flags[near_mask(mask, cfg.candidate_margin)] |= PixelFlag.NEAR_MASK.value
    usable = quality.usable
    allowed = ~mask
    if cfg.candidate_pixels is not None:     # the original's candidate list
        allowed &= read_pixels(cfg.candidate_pixels, darks.shape[1:])
    spec_all = np.argwhere(mask)
    spec_yx = np.argwhere(mask & usable)
    cand_yx = np.argwhere(allowed & usable)
    if len(cand_yx) == 0:
        raise PipelineError(f"{cfg.candidate_pixels or cfg.spectral_mask}: no usable non-spectral "
                            f"pixel to serve as proxy (all hot, missing, constant or excluded)")
    if cfg.proxy_count > len(cand_yx):
        raise PipelineError(f"config key 'proxy_count': {cfg.proxy_count} exceeds the "
                            f"{len(cand_yx)} usable candidate pixels")
    excluded = quality.counts(mask)
    log.info("%d dark frames of %s; %d spectral pixels (%d usable: excluded %s), %d candidates",
             len(darks), darks.shape[1:], len(spec_all), len(spec_yx),
             ", ".join(f"{v} {k}" for k, v in excluded.items()), len(cand_yx))
    cross_fit = _cross_fit(cfg, len(darks))
    centre_frames(darks)
    spec = _series(darks, spec_yx)
    # Cross-fitting: the candidates' series of each half, made directly (never all darks
    # and both halves at once).
    cand = ([_series(darks, cand_yx, half) for half in dark_halves(len(darks))] if cross_fit
            else [_series(darks, cand_yx)])
    del darks
    temps = header_values(dark_paths, cfg.ccdtemp_key)
    if cross_fit:
        _log_half_losses(spec, cfg.min_valid_samples)
    return dict(spec=spec, cand=cand, spec_all=spec_all, spec_yx=spec_yx, cand_yx=cand_yx,
                quality=quality, mask=mask, dark_paths=dark_paths, cross_fit=cross_fit,
                temps=temps)


def _cross_fit(cfg, n_darks):
    """Whether to cross-fit (``proxy_cross_fit``, K > 1, enough darks for two halves); one
    warning when the setting asks for it and the darks are too few."""
    if not cfg.proxy_cross_fit or cfg.proxy_count < 2:
        return False
    need = CROSS_FIT_MIN_DARKS * cfg.min_valid_samples
    if n_darks < need:
        get_logger().warning(
            "proxy_cross_fit: %d dark frames, fewer than %d (%d x min_valid_samples) for two "
            "halves of at least min_valid_samples each: plain matching (proxies and offsets "
            "from all darks)", n_darks, need, CROSS_FIT_MIN_DARKS)
        return False
    return True


def _log_half_losses(spec, min_samples):
    """Log the usable spectral pixels with too few valid darks in a half (they get proxies
    from the other half only, or none)."""
    short = np.stack([np.count_nonzero(~np.isnan(spec[:, half]), axis=1) < min_samples
                      for half in dark_halves(spec.shape[1])])
    one, both = int(np.count_nonzero(short.sum(0) == 1)), int(np.count_nonzero(short.all(0)))
    if one or both:
        get_logger().info("cross-fitting: %d spectral pixels with fewer than min_valid_samples "
                          "valid darks in one half (proxies from the other only), %d in both "
                          "(no proxy)", one, both)


def _series(darks, yx, frames=None):
    """Dark time series (n_pixels, n_frames) of the pixels at ``yx``, frame by frame.

    Filling one column per dark keeps the memory at the result's size (fancy
    indexing of the stack and transposing would need two more copies).
    ``frames``: indices of the darks to take (default all).
    """
    frames = np.arange(len(darks)) if frames is None else frames
    out = np.empty((len(yx), len(frames)), darks.dtype)
    flat = np.ravel_multi_index(yx.T, darks.shape[1:])
    for d, f in enumerate(frames):
        out[:, d] = darks[f].ravel()[flat]
    return out


class ProxyMatches(StageRunner):
    """Stage 1: the proxy matches of every spectral pixel over the darks.

    Its only input is raw (darks, mask, pixel lists): no lineage to check, and
    instead of staging whole outputs it checkpoints finished blocks under
    ``output_dir/.checkpoints``; a rerun with the same inputs and settings
    (after a kill, say) computes only the blocks that are missing, and the
    checkpoints go once the table is written.
    """

    number = 1

    def run(self):
        _match(self.cfg, self.comm, self.overwrite)


def _match(cfg, comm, overwrite=False):
    """Run stage 1 and write ``output_dir/proxy_matches.fits``."""
    log = get_logger()
    layout = Layout(cfg.output_dir)
    prep = store_key = None
    if comm.rank == 0:
        refuse_overwrite([layout.matches], overwrite)
        prep = _prepare(cfg)
        store_key = run_key(__version__, cfg.digest(1), cfg.block_size,
                            files=raw_files(cfg, 1))
    store = BlockStore(layout.checkpoints, comm.bcast(store_key))
    cross_fit = comm.bcast(prep["cross_fit"] if prep else None)
    temps = comm.bcast(prep["temps"] if prep else None)
    n_cand_sets = comm.bcast(len(prep["cand"]) if prep else None)
    cand = [bcast_array(comm, prep["cand"][i] if prep else None) for i in range(n_cand_sets)]
    n_spec = comm.bcast(len(prep["spec"]) if prep else None)

    # Fixed blocks (the result never depends on the ranks); the blocks still to
    # do go out in contiguous runs balanced by their modelled work (a pixel with
    # missing samples costs more: matching.estimate_work), not by pixel count.
    block = cfg.block_size
    n_blocks = -(-n_spec // block)
    work = done = None
    if comm.rank == 0:
        cost = estimate_work(prep["spec"], len(prep["cand_yx"]), cfg.proxy_method)
        work = np.add.reduceat(cost, np.arange(0, n_spec, block)) if n_spec else np.zeros(0)
        done = store.done()
        done = done[done < n_blocks]
        if len(done):
            log.info("resuming: %d of %d blocks done in an earlier run", len(done), n_blocks)
    work, done = comm.bcast(work), comm.bcast(done)
    todo = np.setdiff1d(np.arange(n_blocks), done)
    blocks_per_rank = partition(work[todo], comm.size)
    first = int(np.sum(blocks_per_rank[:comm.rank]))
    my_blocks = todo[first:first + blocks_per_rank[comm.rank]]
    block_sizes = np.minimum(block, n_spec - block * np.arange(n_blocks))
    pixel_counts = [int(block_sizes[ids].sum()) for ids in np.split(todo, np.cumsum(blocks_per_rank)[:-1])]
    in_todo = None
    if comm.rank == 0:
        in_todo = np.isin(np.arange(n_spec) // block, todo)
    local = scatter_rows(comm, prep["spec"][in_todo] if prep else None, pixel_counts)

    threads = threads_per_rank(comm, cfg.blas_threads)
    k = cfg.proxy_count
    log.info("matching %d spectral pixels on %d rank(s) x %d BLAS thread(s), method %s%s, K = %d%s",
             n_spec, comm.size, threads, cfg.proxy_method,
             f" ({cfg.median_mode})" if cfg.proxy_method == "median" else "", k,
             f", cross-fitted ({(k + 1) // 2} chosen on the even darks, {k // 2} on the odd)"
             if cross_fit else "")
    # Reorders each series in place: the broadcast arrays are not used afterwards.
    sets = [CandidateSet(c, cfg.candidate_chunk, copy=False) for c in cand]
    del cand
    if prep:
        del prep["cand"], prep["spec"]
    match = _block_matcher(cfg, sets, temps, cross_fit)
    progress = Progress(comm, sum(pixel_counts), "proxy matching")
    parts, sums = [], []
    offset = 0
    # BLAS gets the rank's threads, the compiled scans one: running both thread
    # pools at once makes their idle threads spin against each other (measured:
    # 2-3x slower).  One rank per core (blas_threads 1) is fastest overall.
    busy = time.perf_counter()
    with limit_blas_threads(threads), kernel_threads(1):
        for b in my_blocks:
            series = local[offset:offset + block_sizes[b]]
            offset += block_sizes[b]
            part, tsums = match(series)
            store.save(int(b), tsums=tsums, **{f: getattr(part, f) for f in _FIELDS})
            parts.append(part)
            sums.append(tsums)
            progress.update(len(series))
    busy = time.perf_counter() - busy
    progress.close(len(local))
    busy, peak = comm.gather(busy), comm.gather(_peak_rss_gib())
    if comm.rank == 0:
        log.info("matching time per rank: %s s; peak resident memory per rank: %s GiB",
                 ", ".join(f"{x:.1f}" for x in busy), ", ".join(f"{x:.2f}" for x in peak))
    result = (MatchResult.concatenate(parts) if parts
              else MatchResult.empty(0, k))
    gathered = {f: gather_rows(comm, getattr(result, f), pixel_counts) for f in _FIELDS}
    sums = comm.gather((my_blocks, sums))
    if comm.rank == 0:
        full = MatchResult.empty(n_spec, k)
        for f in _FIELDS:
            getattr(full, f)[in_todo] = gathered[f]
        block_sums = np.zeros((n_blocks, 2))      # the temperature fit's sums, block by block
        for ids, values in sums:
            block_sums[ids] = np.reshape(values, (-1, 2))
        for b in done:
            saved = store.load(int(b))
            block_sums[b] = saved.pop("tsums")
            for f, values in saved.items():
                getattr(full, f)[b * block:b * block + len(values)] = values
        _write(cfg, layout, prep, full, block_sums if cross_fit else None)
        store.clear()


def _block_matcher(cfg, sets, temps, cross_fit):
    """The function matching one block: ``series -> (MatchResult, [num, den])``, the sums of
    the offsets' temperature fit (zero without cross-fitting)."""
    options = dict(method=cfg.proxy_method, median_mode=cfg.median_mode,
                   median_candidates=cfg.median_candidates, prefilter_count=cfg.prefilter_count,
                   min_samples=cfg.min_valid_samples)
    if not cross_fit:
        return lambda series: (match_block(series, sets[0], proxy_count=cfg.proxy_count,
                                           **options), np.zeros(2))
    counts = ((cfg.proxy_count + 1) // 2, cfg.proxy_count // 2)       # half A takes an odd one
    halves = dark_halves(len(temps))

    def match(series):
        chosen = [None, None]

        def choose(spectral_half, h):
            chosen[h] = match_block(spectral_half, sets[h], proxy_count=counts[h], **options)
            return chosen[h]
        part = cross_fit_block(series, choose, sets, halves, cfg.min_valid_samples)
        # The choosing halves' medians are the temperature fit's instrument.
        instrument = np.concatenate([chosen[0].median, chosen[1].median], axis=1)
        tsums = offset_temperature_sums(series, sets, part, temps, halves, split=counts[0],
                                        instrument=instrument)
        return proxies_first(part), np.array(tsums)
    return match


def _peak_rss_gib():
    """Peak resident memory of this process so far, GiB (0 where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20   # KiB on Linux


def _write(cfg, layout, prep, result, block_sums=None):
    """Rank 0: write the match table of all spectral pixels (excluded ones flagged);
    ``block_sums`` (cross-fitted: the offsets' temperature fit's sums, one row per block)
    give the header's OFFTCOEF."""
    log = get_logger()
    spec_all, spec_yx, cand_yx = prep["spec_all"], prep["spec_yx"], prep["cand_yx"]
    k = cfg.proxy_count
    n = len(spec_all)
    # Map usable spectral pixels into the full list (both in row-major order).
    shape = prep["mask"].shape
    where = np.searchsorted(np.ravel_multi_index(spec_all.T, shape),
                            np.ravel_multi_index(spec_yx.T, shape))
    proxy = np.full((n, k, 2), -1, np.int32)
    stats = {name: np.full((n, k), np.nan) for name in ("score", "median", "std")}
    n_samples = np.zeros((n, k), np.int32)
    has = result.index >= 0
    proxy[where] = np.where(has[..., None], cand_yx[np.where(has, result.index, 0)], -1)
    for name in stats:
        stats[name][where] = getattr(result, name)
    n_samples[where] = result.n_samples
    flags = prep["quality"].flags[spec_all[:, 0], spec_all[:, 1]].astype(np.uint8)
    flags[(flags == 0) & (proxy[..., 0] < 0).all(axis=1)] |= PixelFlag.NO_PROXY.value

    table = Table()
    table["SPEC_Y"], table["SPEC_X"] = spec_all[:, 0].astype(np.int32), spec_all[:, 1].astype(np.int32)
    table["PROXY_Y"], table["PROXY_X"] = proxy[..., 0], proxy[..., 1]
    table["SCORE"] = stats["score"]
    table["RES_MEDIAN"] = stats["median"]
    table["RES_STD"] = stats["std"]
    table["N_SAMPLES"] = n_samples
    table["FLAG"] = flags
    units = {"SCORE": "adu2" if cfg.proxy_method == "lsq" else "adu", "RES_MEDIAN": "adu",
             "RES_STD": "adu", "SPEC_Y": "pix", "SPEC_X": "pix", "PROXY_Y": "pix", "PROXY_X": "pix"}
    for col, unit in units.items():
        table[col].unit = unit
    matched = int(np.count_nonzero(flags == 0))
    hdr = fits.Header()
    hdr["NSPEC"] = (n, "spectral pixels in the mask")
    hdr["NMATCHED"] = (matched, "spectral pixels with a proxy")
    hdr["NCAND"] = (len(cand_yx), "usable candidate (non-spectral) pixels")
    hdr["NDARKS"] = (len(prep["dark_paths"]), "dark frames")
    hdr["HOTTHRES"] = (prep["quality"].hot_threshold, "[adu] median dark level above which hot")
    counts = prep["quality"].counts(prep["mask"])
    hdr["NHOT"] = (counts["hot"], "spectral pixels excluded as hot")
    hdr["NFEWSAMP"] = (counts["few_samples"], "spectral pixels excluded: too few valid darks")
    hdr["NCONST"] = (counts["constant"], "spectral pixels excluded: constant")
    hdr["NEXCL"] = (counts["excluded"], "spectral pixels excluded: in exclude_pixels")
    hdr["NNOPROXY"] = (int(np.count_nonzero(flags & PixelFlag.NO_PROXY)), "spectral pixels: no candidate")
    hdr["PROXYK"] = (k, "proxies per spectral pixel")
    hdr["NNEARMSK"] = (int(np.count_nonzero(prep["quality"].flags & PixelFlag.NEAR_MASK)),
                       "candidates within candidate_margin of mask")
    hdr["XFIT"] = (block_sums is not None, "proxies cross-fitted on halves of the darks")
    temps = prep["temps"]
    if np.isfinite(temps).any():     # lets stage 2 warn about science frames beyond them
        hdr["DTEMPMIN"] = (float(np.nanmin(temps)), f"[degC] coldest dark's {cfg.ccdtemp_key}")
        hdr["DTEMPMAX"] = (float(np.nanmax(temps)), f"[degC] warmest dark's {cfg.ccdtemp_key}")
        hdr["TDARKMED"] = (float(np.nanmedian(temps)), f"[degC] darks' median {cfg.ccdtemp_key}")
    if block_sums is not None:
        num, den = math.fsum(block_sums[:, 0]), math.fsum(block_sums[:, 1])
        if den > 0:       # offsets scale as 1 + OFFTCOEF (T - TDARKMED) (crossfit.offset_scale)
            hdr["OFFTCOEF"] = (num / den, "[1/degC] offsets' relative change per degC")
    table_hdu = fits.BinTableHDU(table, name="MATCHES")
    table_hdu.header["FLAGDOC"] = flagdoc(PixelFlag)
    flags_hdu = fits.ImageHDU(prep["quality"].flags, name="PIXFLAGS")
    flags_hdu.header["FLAGDOC"] = flagdoc(PixelFlag, [f for f in PixelFlag if f != PixelFlag.NO_PROXY])
    mask_hdu = fits.ImageHDU(prep["mask"].astype(np.uint8), name="SPECMASK")
    median_hdu = fits.ImageHDU(prep["quality"].level, name="DARKMED")
    median_hdu.header["BUNIT"] = "adu"
    median_hdu.header["COMMENT"] = "each pixel's median over the darks (stage 2's scattered-light fit)"
    raw = raw_files(cfg, 1)      # as read: darks, mask, pixel lists
    write_fits(layout.matches, None, provenance=cfg.provenance(1), inputs=raw, raw_inputs=raw,
               header=hdr, extensions=[table_hdu, flags_hdu, mask_hdu, median_hdu])
    log.info("wrote %s: %d of %d spectral pixels matched (%d excluded)",
             layout.matches, matched, n, n - matched)

