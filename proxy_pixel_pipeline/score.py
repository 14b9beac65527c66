"""Score a pipeline run against the simulator's ground truth.

:func:`score_run` compares the outputs under a config's ``output_dir`` with
the truth written by :mod:`proxy_pixel_pipeline.simulate` (``truth/``) and
returns a nested dict of metrics; :func:`format_table` renders it for a
terminal and :func:`write_score` stores it as JSON (``score.json``).  Only
simulated data can be scored: real frames have no truth.

Notation
--------
For science frame *f* and pixel *p*: ``S`` is the raw science frame (ADU, NaN
where missing), ``SIG`` the true expected spectral signal (truth
``SIGNAL``, ADU, scaled by the frame's ``FLUX_SCALE``), ``BG`` the true
expected background (truth ``BACKGROUND`` = bias + dark current, ADU),
``CR`` the true cosmic-ray charge (truth ``COSMIC``, ADU), ``F2`` the
stage-2 Final Frame (``final_no_infill/``), ``F5`` the stage-5 frame
(``final/``).  The *trace* is the spectral mask of the config
(``spectral_mask``).  The *master dark* ``MD`` is the per-pixel median of the
raw dark frames (missing samples skipped).  Pixels marked ``MISSING`` in the
truth are left out of every pixel-level metric (the binned sums below
include them, filled as stated).

Metrics
-------
``run`` -- paths, number of frames and trace pixels, the simulator's preset
    and seed, and which stages' outputs were found.

``background`` -- in-trace background residual (ADU).
    Pixels: in the trace, not missing, with ``F2``, ``S`` and ``MD`` finite
    (so every method is judged on exactly the same pixels).  They are split
    into *clean* pixels (``CR == 0``, key ``clean``) and *CR-hit* pixels
    (``CR > 0``, key ``cosmic``), pooled over all science frames; with a
    stage-1 match table also ``clean_proxy_ok``: clean pixels none of whose
    proxies was hit by a cosmic ray in that frame (such a hit leaves a
    negative residual the oracle does not have).  Residuals per method:

    * ``pipeline``    ``F2 - SIG`` (proxy background subtraction, stage 2);
    * ``master_dark`` ``S - MD - SIG`` (the classical baseline);
    * ``oracle``      ``S - BG - SIG`` (the true background removed: only
      the pixel's own shot and read noise, plus the cosmic ray on CR-hit
      pixels, is left -- the irreducible noise);
    * ``stage5``      ``F5 - SIG`` on the same pixels (after negative-pixel
      infill and cosmic-ray cleaning).

    Statistics of each residual ``r``: ``rms = sqrt(mean(r**2))``,
    ``robust_rms = 1.4826 * median(|r|)`` (a robust RMS about zero: equals
    sigma for zero-mean Gaussian noise, insensitive to a few outliers but
    not to a bias), ``median``, ``mean``, and the ratios ``rms_over_oracle``
    and ``robust_rms_over_oracle`` to the oracle's values on the same
    pixels.  ``infilled`` gives the same statistics of ``F5 - SIG`` on the
    in-trace, not missing pixels that stage 5 infilled (its ``INFILLED``
    mask).  ``proxy_cr_fraction`` is the fraction of clean pixels one of whose
    proxies (stage 1) was hit by a cosmic ray in that frame.
    ``proxy_match_error``: statistics of ``BG - BG_proxy`` over the trace
    pixels that have a proxy, pooled over frames, where ``BG_proxy`` is the
    median of the proxies' true expected backgrounds in that frame, plus
    their offsets with ``proxy_offset`` (the stage-2 combination for one
    proxy or ``proxy_combine: median``): the
    noise-free error of the background the matches predict, i.e. the quality
    of stage 1 alone.

``spectrum`` -- bias of the binned spectrum.
    Column bins of the config's ``bin_width`` (last bin possibly narrower).
    For estimate ``E``, frame *f* and bin *b*: ``E[f, b]`` = sum of the image
    over the trace pixels of the bin's columns and ``T[f, b]`` the same sum
    of ``SIG``.  Per-bin bias ``beta_b = sum_f E[f, b] / sum_f T[f, b] - 1``
    (bias of the time-averaged spectrum).  Reported: ``median_bias`` =
    median over bins of ``beta_b``; ``bias_scatter`` = 1.4826 * MAD over bins
    of ``beta_b``; ``white_bias`` = ``sum E / sum T - 1`` over all bins and
    frames; ``frame_scatter`` = 1.4826 * MAD over (f, b) of
    ``E/T - 1 - beta_b`` (the per-frame, per-bin noise); ``coverage`` =
    fraction of in-trace, not missing pixel samples the estimate had a finite
    value for before any filling; ``bin_bias`` lists every ``beta_b``.
    Estimates:

    * ``final``  ``F5`` (every trace pixel has a value after infill;
      non-finite values, if any, count as 0 and lower ``coverage``);
    * ``stage2`` ``F2`` with its empty pixels given their true value ``SIG``
      (so that only the background subtraction is judged, not the infill);
    * ``master_dark`` ``S - MD`` and ``oracle`` ``S - BG``, missing pixels
      likewise filled with ``SIG``.  The oracle still holds the cosmic rays;
    * ``oracle_no_cr`` ``S - BG - CR`` (filled likewise): only the shot and
      read noise are left, the floor of any method;
    * ``match_only`` ``SIG + BG - BG_proxy`` (see ``proxy_match_error``;
      pixels without a proxy hold ``SIG``): the noise-free systematic error
      the stage-1 matches alone leave in the spectrum and the depth;
    * ``truth`` ``SIG`` itself (zero bias and the injected depth: checks the
      bookkeeping).

    ``mask_flux_fraction`` = ``sum T`` / sum over frames and columns of
    ``FLUX_E / GAIN * FLUX_SCALE`` (truth SPECTRUM): the part of the true
    flux inside the trace mask (close to 1).

``transit`` -- transit depth.
    White-light flux ``W_f`` = sum of ``E[f, b]`` over bins.  With the truth
    FRAMES table's TRANSIT flags: ``depth = 1 - mean(W_in) / mean(W_out)``.
    Its uncertainty assumes every frame scatters like the out-of-transit
    frames, ``s = std(W_out, ddof=1)``:
    ``depth_err = (mean_in / mean_out) * sqrt(s**2 / (n_in mean_in**2) +
    s**2 / (n_out mean_out**2))``.  ``error = depth - injected`` (truth
    header ``DEPTH``) and ``n_sigma = error / depth_err``, for each
    estimate of ``spectrum``.

``profile`` -- stage 3 (and 4) double-Gaussian fits vs the true profile.
    The truth PROFILE table (per column) is averaged over each bin's columns;
    the true peak ratio per column is ``AMP2/AMP1``, averaged likewise.  The
    Median Frame's amplitudes are medians over frames and columns, so only
    shapes are compared.  *Double* bins (flag without SINGLE and FAILED):
    errors of ``mu1``, ``mu2``, ``sigma1``, ``sigma2`` (pix), separation
    ``mu2 - mu1`` (pix) and amplitude ratio ``amp2/amp1``.  *Single* bins
    (flag SINGLE; the truth still has two close peaks): errors of the fitted
    centre ``mu1`` against the true profile's centroid and of ``sigma1``
    against its RMS width.  *All* non-failed bins: centroid and RMS width of
    the fitted profile against the truth's, where for peaks of height
    ``a_i``, centre ``mu_i`` and width ``s_i`` (area weights
    ``w_i = a_i s_i``) centroid = ``sum w_i mu_i / sum w_i`` and RMS width
    = ``sqrt(sum w_i (s_i**2 + mu_i**2) / sum w_i - centroid**2)``.  Each
    quantity reports ``median_abs_error`` and ``median_error`` (signed,
    fit - truth).  Stage 4 (``final_fits/``) is scored the same way, pooled
    over frames, with the number of FALLBACK bins.

``cosmic`` -- stage-5 cosmic-ray detection.
    Per-pixel noise ``sigma = sqrt((BG - bias)/gain + SIG/gain +
    (read_noise/gain)**2)`` ADU (shot noise of dark and signal, read noise;
    truth header GAIN, RDNOISE, BIAS).  Truth CR pixels: in-trace, not
    missing, ``CR > cr_nsigma * sigma`` (default 5: fainter deposits are lost
    in the noise).  Non-CR pixels: in-trace, not missing, ``CR == 0``.
    Faint deposits (``0 < CR <= threshold``) count in neither.  ``recall`` =
    flagged truth-CR pixels / truth-CR pixels; ``false_positive_rate`` =
    flagged non-CR pixels / non-CR pixels; ``precision`` = flagged truth-CR /
    (flagged truth-CR + flagged non-CR).  Flags: the ``COSMIC`` extension of
    ``final/``.

A metric whose stage outputs are missing is ``None`` and ``notes`` says
why; NaN values are written as ``null`` in JSON.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from .atomic import write_text
from .config import load_config
from .errors import PipelineError
from .fits_io import read_image, read_mask
from .layout import Layout
from .products import read_matches, read_profile_fits
from .profiles import FitFlag, bin_edges

__all__ = ["score_run", "format_table", "write_score"]

_ROBUST = 1.4826  # MAD -> sigma for a Gaussian
_METHODS = ("pipeline", "master_dark", "oracle", "stage5")
_ESTIMATES = ("final", "stage2", "master_dark", "oracle", "oracle_no_cr", "match_only", "truth")
_POPULATIONS = ("clean", "clean_proxy_ok", "cosmic")


# --------------------------------------------------------------------------
# small statistics helpers
# --------------------------------------------------------------------------
def _f(x):
    """Plain float, None for NaN/inf/None (JSON-friendly)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _residual_stats(r, oracle=None):
    """RMS, robust RMS, median and mean of residuals ``r`` (1D, finite).

    Parameters
    ----------
    r : ndarray
        Residuals, ADU.
    oracle : dict, optional
        The oracle's statistics on the same pixels, for the ratios.

    Returns
    -------
    dict
        ``n``, ``rms``, ``robust_rms``, ``median``, ``mean`` and, with
        ``oracle``, ``rms_over_oracle`` and ``robust_rms_over_oracle``.
    """
    r = np.asarray(r, float)
    out = {"n": int(r.size), "rms": None, "robust_rms": None, "median": None, "mean": None}
    if r.size:
        out.update(rms=_f(np.sqrt(np.mean(r * r))), robust_rms=_f(_ROBUST * np.median(np.abs(r))),
                   median=_f(np.median(r)), mean=_f(np.mean(r)))
    if oracle is not None:
        for key in ("rms", "robust_rms"):
            a, b = out[key], oracle.get(key)
            out[f"{key}_over_oracle"] = _f(a / b) if a is not None and b else None
    return out


def _error_stats(err):
    """Median absolute and median signed error of a 1D array (NaNs dropped)."""
    err = np.asarray(err, float)
    err = err[np.isfinite(err)]
    if not err.size:
        return {"n": 0, "median_abs_error": None, "median_error": None}
    return {"n": int(err.size), "median_abs_error": _f(np.median(np.abs(err))),
            "median_error": _f(np.median(err))}


def _robust_std(x):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return _f(_ROBUST * np.median(np.abs(x - np.median(x)))) if x.size else None


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------
def _read_truth_frame(path):
    """BACKGROUND, SIGNAL, COSMIC (float64 ADU) and MISSING (bool) of one science frame."""
    try:
        with fits.open(path, memmap=False) as hdul:
            return {name.lower(): np.asarray(hdul[name].data, np.float64)
                    for name in ("BACKGROUND", "SIGNAL", "COSMIC")} | {
                "missing": np.asarray(hdul["MISSING"].data) != 0}
    except FileNotFoundError:
        raise PipelineError(f"{path}: truth file not found") from None
    except (KeyError, OSError) as exc:
        raise PipelineError(f"{path}: not a simulator truth frame ({exc})") from None


def _read_truth_tables(truth_dir):
    """Header, FRAMES, SPECTRUM and PROFILE of ``truth/truth.fits``."""
    path = Path(truth_dir) / "truth.fits"
    try:
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header.copy()
            # Column by column through FITS_rec, which decodes logical and string columns.
            tables = {name: {col: np.array(hdul[name].data[col]) for col in hdul[name].data.names}
                      for name in ("FRAMES", "SPECTRUM", "PROFILE")}
    except FileNotFoundError:
        raise PipelineError(f"{path}: truth not found; score needs a simulated data set "
                            f"(simulate.py writes truth/ next to config.yaml)") from None
    except (KeyError, OSError) as exc:
        raise PipelineError(f"{path}: not a simulator truth file ({exc})") from None
    return header, tables


def _stage_files(paths, notes, label, script):
    """``paths`` if every file exists, else None with a note."""
    missing = [p for p in paths if not Path(p).is_file()]
    if not missing:
        return list(paths)
    notes.append(f"{label}: {len(missing)} of {len(paths)} files missing "
                 f"(e.g. {missing[0]}); run {script}")
    return None


def _master_dark(cfg, mask, notes):
    """Median of the raw darks on the trace pixels (NaN elsewhere), or None."""
    try:
        paths = cfg.dark_paths()
        values = np.empty((len(paths), int(mask.sum())), np.float32)
        for i, path in enumerate(paths):
            image = read_image(path, cfg.missing_value)
            if image.shape != mask.shape:
                raise PipelineError(f"{path}: shape {image.shape} differs from the mask's "
                                    f"{mask.shape}")
            values[i] = image[mask]
    except PipelineError as exc:
        notes.append(f"master dark unavailable: {exc}")
        return None
    out = np.full(mask.shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a pixel missing in every dark
        out[mask] = np.nanmedian(values, axis=0)
    return out


def _proxy_positions(layout, mask, offsets, notes):
    """(rows, cols, offsets) image-shaped arrays (K, ny, nx) of each trace pixel's proxies
    (offsets: the RES_MEDIAN stage 2 adds with ``proxy_offset``, else 0), or None."""
    if not layout.matches.is_file():
        return None
    try:
        spectral, proxy, table = read_matches(layout.matches)
    except (PipelineError, KeyError, ValueError) as exc:
        notes.append(f"proxy table unreadable: {exc}")
        return None
    k = proxy.shape[1]
    py = np.full((k,) + mask.shape, -1, np.intp)
    px = np.full((k,) + mask.shape, -1, np.intp)
    inside = ((spectral[:, 0] >= 0) & (spectral[:, 0] < mask.shape[0])
              & (spectral[:, 1] >= 0) & (spectral[:, 1] < mask.shape[1]))
    s, p = spectral[inside], proxy[inside]
    py[:, s[:, 0], s[:, 1]] = p[..., 0].T
    px[:, s[:, 0], s[:, 1]] = p[..., 1].T
    off = np.zeros((k,) + mask.shape)
    if offsets:
        res = np.asarray(table["RES_MEDIAN"], float).reshape(proxy.shape[:2])[inside]
        off[:, s[:, 0], s[:, 1]] = np.nan_to_num(res).T
    return py, px, off


def _same_shape(image, mask, path):
    """``image``, or a PipelineError if its shape is not the spectral mask's."""
    if image.shape != mask.shape:
        raise PipelineError(f"{path}: shape {image.shape} differs from the spectral mask's "
                            f"{mask.shape}")
    return image


def _read_stage5(path):
    """Cleaned frame, INFILLED and COSMIC masks (bool) of a stage-5 file."""
    try:
        with fits.open(path, memmap=False) as hdul:
            image = np.asarray(hdul[0].data, np.float64)
            infilled = np.asarray(hdul["INFILLED"].data) != 0
            cosmic = np.asarray(hdul["COSMIC"].data) != 0
    except (KeyError, OSError) as exc:
        raise PipelineError(f"{path}: cannot read stage 5 output ({exc})") from None
    return image, infilled, cosmic


# --------------------------------------------------------------------------
# the score
# --------------------------------------------------------------------------
def score_run(config_path, truth_dir=None, cr_nsigma=5.0) -> dict:
    """Compare a pipeline run with the simulator's truth.

    Parameters
    ----------
    config_path : str or Path
        The run's pipeline config (as written by ``simulate.py``).
    truth_dir : str or Path, optional
        Folder of the truth files; default ``<config folder>/truth``.
    cr_nsigma : float
        A truth cosmic-ray pixel must hold more than this many times the
        pixel's noise (default 5).

    Returns
    -------
    dict
        Sections ``run``, ``background``, ``spectrum``, ``transit``,
        ``profile``, ``cosmic`` (each None when its stage outputs are
        missing) and ``notes`` (list of str); see the module docstring for
        every metric's definition.  Floats are plain Python floats or None
        (never NaN).

    Raises
    ------
    PipelineError
        Invalid config, or no usable truth (the data are not simulated).
    """
    cfg = load_config(config_path)
    if truth_dir is None:
        truth_dir = Path(config_path).resolve().parent / "truth"
    truth_dir = Path(truth_dir)
    layout = Layout(cfg.output_dir)
    notes = []
    header, tables = _read_truth_tables(truth_dir)
    gain, rdnoise, bias = (float(header[k]) for k in ("GAIN", "RDNOISE", "BIAS"))
    injected = float(header["DEPTH"])

    science = cfg.science_paths()
    names = [Path(p).name for p in science]
    frames = tables["FRAMES"]
    table_names = [str(n).strip() for n in frames["NAME"]]
    row_of = {n: i for i, n in enumerate(table_names)}
    unknown = [n for n in names if n not in row_of]
    if unknown:
        raise PipelineError(f"{truth_dir / 'truth.fits'}: FRAMES has no row for {unknown[0]}; "
                            f"is this the truth of these science frames?")
    transit = np.array([bool(frames["TRANSIT"][row_of[n]]) for n in names])
    flux_scale = np.array([float(frames["FLUX_SCALE"][row_of[n]]) for n in names])

    mask = read_mask(cfg.spectral_mask)
    ny, nx = mask.shape
    edges = bin_edges(nx, cfg.bin_width)
    n_bins = len(edges) - 1

    f2_paths = _stage_files([layout.final_no_infill(p) for p in science], notes,
                            "stage 2 final_no_infill", "2_Frames.py")
    f5_paths = _stage_files([layout.final(p) for p in science], notes,
                            "stage 5 final", "5_Infill.py")
    md = _master_dark(cfg, mask, notes)
    proxies = _proxy_positions(layout, mask, cfg.proxy_offset, notes)

    res = {kind: {m: [] for m in _METHODS} for kind in _POPULATIONS}
    infill_res, match_err = [], []
    proxy_cr = [0, 0]
    sums = {e: np.zeros((len(science), n_bins)) for e in _ESTIMATES}
    finite = {e: np.zeros(len(science)) for e in _ESTIMATES}
    n_valid = np.zeros(len(science))
    cr_counts = {"truth": 0, "found": 0, "nonc": 0, "false": 0, "faint": 0, "faint_flagged": 0,
                 "flagged": 0}

    def bin_sum(image):
        """Per-bin sum over the trace pixels (non-finite counted as 0)."""
        col = np.where(mask & np.isfinite(image), image, 0.0).sum(axis=0)
        return np.add.reduceat(col, edges[:-1])

    for i, path in enumerate(science):
        truth = _read_truth_frame(truth_dir / names[i])
        sig, bg, cr, miss = truth["signal"], truth["background"], truth["cosmic"], truth["missing"]
        _same_shape(sig, mask, truth_dir / names[i])
        sci = _same_shape(read_image(path, cfg.missing_value, dtype=np.float64), mask, path)
        f2 = f5 = infilled = flagged = None
        if f2_paths:
            f2 = _same_shape(read_image(f2_paths[i], dtype=np.float64), mask, f2_paths[i])
        if f5_paths:
            f5, infilled, flagged = (_same_shape(a, mask, f5_paths[i])
                                     for a in _read_stage5(f5_paths[i]))
        valid = mask & ~miss
        n_valid[i] = valid.sum()

        # --- background residual on identical pixels
        sel = valid & np.isfinite(sci)
        if f2 is not None:
            sel &= np.isfinite(f2)
        if md is not None:
            sel &= np.isfinite(md)
        resid = {"oracle": sci - bg - sig,
                 "pipeline": None if f2 is None else f2 - sig,
                 "master_dark": None if md is None else sci - md - sig,
                 "stage5": None if f5 is None else f5 - sig}
        clean = sel & (cr == 0)
        populations = {"clean": clean, "cosmic": sel & (cr > 0)}
        proxy_bg = None
        if proxies is not None:
            # Proxies' truth: was one hit by a cosmic ray, and their expected background.
            py, px, off = proxies
            ok = py >= 0
            yy, xx = np.where(ok, py, 0), np.where(ok, px, 0)
            hit = (ok & (cr[yy, xx] > 0)).any(axis=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # pixels without a proxy
                proxy_bg = np.nanmedian(np.where(ok, bg[yy, xx] + off, np.nan), axis=0)
            match_err.append((bg - proxy_bg)[mask & ok.any(axis=0)])
            populations["clean_proxy_ok"] = clean & ~hit
            proxy_cr[0] += int((clean & hit).sum())
            proxy_cr[1] += int(clean.sum())
        for kind, pix in populations.items():
            pix_5 = pix if f5 is None else pix & np.isfinite(f5)
            for m, r in resid.items():
                if r is not None:
                    res[kind][m].append(r[pix_5 if m == "stage5" else pix])
        if f5 is not None:
            pix = valid & infilled & np.isfinite(f5)
            infill_res.append((f5 - sig)[pix])

        # --- binned sums per estimate (empty pixels filled with the truth where stated)
        def filled(image):
            return np.where(np.isfinite(image), image, sig)

        estimates = {"truth": sig, "oracle": filled(sci - bg),
                     "oracle_no_cr": filled(sci - bg - cr)}
        finite["truth"][i] = n_valid[i]
        finite["oracle"][i] = finite["oracle_no_cr"][i] = (valid & np.isfinite(sci)).sum()
        if proxy_bg is not None:
            estimates["match_only"] = filled(sig + bg - proxy_bg)
            finite["match_only"][i] = (valid & np.isfinite(proxy_bg)).sum()
        if md is not None:
            estimates["master_dark"] = filled(sci - md)
            finite["master_dark"][i] = (valid & np.isfinite(sci - md)).sum()
        if f2 is not None:
            estimates["stage2"] = filled(f2)
            finite["stage2"][i] = (valid & np.isfinite(f2)).sum()
        if f5 is not None:
            estimates["final"] = f5
            finite["final"][i] = (valid & np.isfinite(f5)).sum()
        for e, image in estimates.items():
            sums[e][i] = bin_sum(image)

        # --- cosmic rays
        if f5 is not None:
            noise = np.sqrt(np.clip(bg - bias, 0, None) / gain + np.clip(sig, 0, None) / gain
                            + (rdnoise / gain) ** 2)
            strong = valid & (cr > cr_nsigma * noise)
            faint = valid & (cr > 0) & ~strong
            none = valid & (cr == 0)
            cr_counts["truth"] += int(strong.sum())
            cr_counts["found"] += int((strong & flagged).sum())
            cr_counts["nonc"] += int(none.sum())
            cr_counts["false"] += int((none & flagged).sum())
            cr_counts["faint"] += int(faint.sum())
            cr_counts["faint_flagged"] += int((faint & flagged).sum())
            cr_counts["flagged"] += int((valid & flagged).sum())

    available = {"truth": True, "oracle": True, "oracle_no_cr": True,
                 "match_only": proxies is not None, "master_dark": md is not None,
                 "stage2": f2_paths is not None, "final": f5_paths is not None}

    # ------------------------------------------------------------- background
    background = {"n_frames": len(science)}
    for kind in _POPULATIONS:
        cat = {m: np.concatenate(v) if v else None for m, v in res[kind].items()}
        if cat["oracle"] is None:          # no proxy table: no clean_proxy_ok population
            background[kind] = None
            continue
        oracle = _residual_stats(cat["oracle"])
        background[kind] = {m: None if cat[m] is None else
                            _residual_stats(cat[m], None if m == "oracle" else oracle)
                            for m in _METHODS}
    background["proxy_match_error"] = (_residual_stats(np.concatenate(match_err))
                                       if match_err else None)
    background["infilled"] = _residual_stats(np.concatenate(infill_res)) if infill_res else None
    background["proxy_cr_fraction"] = _f(proxy_cr[0] / proxy_cr[1]) if proxy_cr[1] else None
    if f2_paths is None:
        notes.append("background: no stage 2 frames, pipeline residual not scored "
                     "(baselines on all in-trace pixels)")

    # ------------------------------------------------------------- spectrum and transit
    truth_sum = sums["truth"]
    spec_e = np.asarray(tables["SPECTRUM"]["FLUX_E"], float)
    expected = spec_e.sum() / gain * flux_scale.sum()
    spectrum = {"bin_width": int(cfg.bin_width), "n_bins": int(n_bins),
                "mask_flux_fraction": _f(truth_sum.sum() / expected) if expected else None,
                "estimates": {}}
    transit_out = {"injected": injected, "n_in": int(transit.sum()), "n_out": int((~transit).sum()),
                   "estimates": {}}
    for e in _ESTIMATES:
        if not available[e]:
            spectrum["estimates"][e] = None
            transit_out["estimates"][e] = None
            continue
        coverage = finite[e].sum() / n_valid.sum() if n_valid.sum() else None
        spectrum["estimates"][e] = _spectrum_stats(sums[e], truth_sum, coverage)
        transit_out["estimates"][e] = _depth(sums[e].sum(axis=1), transit, injected)
    if transit.all() or not transit.any():
        notes.append("transit: need both in- and out-of-transit frames; depth not scored")

    # ------------------------------------------------------------- profile
    profile = _profile_section(layout, science, tables["PROFILE"], edges, notes)

    # ------------------------------------------------------------- cosmic rays
    if f5_paths is None:
        cosmic = None
        notes.append("cosmic: no stage 5 frames, cosmic-ray recall not scored")
    else:
        c = cr_counts
        tp_fp = c["found"] + c["false"]
        cosmic = {"nsigma": float(cr_nsigma), "n_truth": c["truth"], "n_found": c["found"],
                  "recall": _f(c["found"] / c["truth"]) if c["truth"] else None,
                  "n_non_cr": c["nonc"], "n_false": c["false"],
                  "false_positive_rate": _f(c["false"] / c["nonc"]) if c["nonc"] else None,
                  "precision": _f(c["found"] / tp_fp) if tp_fp else None,
                  "n_faint": c["faint"], "n_faint_flagged": c["faint_flagged"],
                  "n_flagged": c["flagged"]}

    run = {"config": str(Path(config_path).resolve()), "output_dir": str(layout.root),
           "truth_dir": str(truth_dir), "n_science": len(science), "shape": [ny, nx],
           "n_trace_pixels": int(mask.sum()), "bin_width": int(cfg.bin_width),
           "preset": header.get("SIMPRES"), "seed": header.get("SIMSEED"),
           "proxy_method": cfg.proxy_method, "proxy_count": int(cfg.proxy_count),
           "proxy_combine": cfg.proxy_combine, "proxy_offset": bool(cfg.proxy_offset),
           "stages_found": {"1": layout.matches.is_file(), "2": f2_paths is not None,
                            "3": layout.median_fits.is_file(),
                            "4": all(layout.final_fits(p).is_file() for p in science),
                            "5": f5_paths is not None}}
    return {"run": run, "background": background, "spectrum": spectrum, "transit": transit_out,
            "profile": profile, "cosmic": cosmic, "notes": notes}


def _spectrum_stats(est, truth, coverage):
    """Bias statistics of binned sums ``est`` (frames, bins) against ``truth``."""
    good = np.all(truth > 0, axis=0)
    if not good.any():
        return {"median_bias": None, "bias_scatter": None, "white_bias": None,
                "frame_scatter": None, "coverage": _f(coverage), "n_bins": 0}
    e, t = est[:, good], truth[:, good]
    beta = e.sum(axis=0) / t.sum(axis=0) - 1.0
    rel = e / t - 1.0 - beta
    return {"median_bias": _f(np.median(beta)), "bias_scatter": _robust_std(beta),
            "white_bias": _f(e.sum() / t.sum() - 1.0), "frame_scatter": _robust_std(rel.ravel()),
            "coverage": _f(coverage), "n_bins": int(good.sum()),
            "bin_bias": [_f(b) for b in beta]}


def _depth(white, transit, injected):
    """Transit depth from white-light fluxes and in-transit flags."""
    w_in, w_out = white[transit], white[~transit]
    out = {"depth": None, "depth_err": None, "error": None, "n_sigma": None}
    if not len(w_in) or not len(w_out):
        return out
    m_in, m_out = w_in.mean(), w_out.mean()
    if m_out == 0:
        return out
    depth = 1.0 - m_in / m_out
    out.update(depth=_f(depth), error=_f(depth - injected))
    if len(w_out) >= 2 and m_in != 0:
        s = w_out.std(ddof=1)
        if s <= 1e-12 * abs(m_out):        # identical out-of-transit fluxes (the truth)
            s = 0.0
        err = (m_in / m_out) * math.sqrt(s * s / (len(w_in) * m_in * m_in)
                                         + s * s / (len(w_out) * m_out * m_out))
        out["depth_err"] = _f(err)
        out["n_sigma"] = _f((depth - injected) / err) if err > 0 else None
    return out


# --------------------------------------------------------------------------
# profile
# --------------------------------------------------------------------------
def _centroid_width(a1, m1, s1, a2, m2, s2):
    """Centroid and RMS width of two Gaussians (area weights a*s); NaN-safe."""
    a2 = np.where(np.isfinite(a2), a2, 0.0)
    w1, w2 = np.abs(a1 * s1), np.abs(a2 * s2)
    m2 = np.where(w2 > 0, m2, 0.0)
    s2 = np.where(w2 > 0, s2, 0.0)
    tot = w1 + w2
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (w1 * m1 + w2 * m2) / tot
        var = (w1 * (s1 ** 2 + m1 ** 2) + w2 * (s2 ** 2 + m2 ** 2)) / tot - c ** 2
    return c, np.sqrt(np.clip(var, 0, None))


def _truth_bins(profile, lo, hi):
    """Truth PROFILE quantities averaged over the columns [lo, hi) of each bin."""
    col = np.asarray(profile["COLUMN"], np.int64)
    quant = {k.lower(): np.asarray(profile[k], float) for k in
             ("AMP1", "MU1", "SIG1", "AMP2", "MU2", "SIG2")}
    quant["ratio"] = quant["amp2"] / quant["amp1"]
    quant["centroid"], quant["width"] = _centroid_width(quant["amp1"], quant["mu1"], quant["sig1"],
                                                        quant["amp2"], quant["mu2"], quant["sig2"])
    out = {k: np.full(len(lo), np.nan) for k in quant}
    # Prefix sums give every bin's mean without a loop over bins.
    order = np.argsort(col)
    col = col[order]
    first = np.searchsorted(col, lo)
    last = np.searchsorted(col, hi)
    n = last - first
    for k, v in quant.items():
        c = np.r_[0.0, np.cumsum(v[order])]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[k] = np.where(n > 0, (c[last] - c[first]) / np.maximum(n, 1), np.nan)
    return out


def _profile_errors(fit, truth):
    """Errors of one set of fits (a ProfileFits) against per-bin truth."""
    flag = np.asarray(fit.flag, int)
    failed = (flag & FitFlag.FAILED) != 0
    single = ((flag & FitFlag.SINGLE) != 0) & ~failed
    double = ~single & ~failed
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = fit.amp2 / fit.amp1
    cen, wid = _centroid_width(fit.amp1, fit.mu1, fit.sigma1, fit.amp2, fit.mu2, fit.sigma2)
    d = double
    out = {"n_bins": int(len(flag)), "n_double": int(d.sum()), "n_single": int(single.sum()),
           "n_failed": int(failed.sum()),
           "n_fallback": int(((flag & FitFlag.FALLBACK) != 0).sum()),
           "double": {
               "mu1": _error_stats((fit.mu1 - truth["mu1"])[d]),
               "mu2": _error_stats((fit.mu2 - truth["mu2"])[d]),
               "sigma1": _error_stats((fit.sigma1 - truth["sig1"])[d]),
               "sigma2": _error_stats((fit.sigma2 - truth["sig2"])[d]),
               "separation": _error_stats(((fit.mu2 - fit.mu1) - (truth["mu2"] - truth["mu1"]))[d]),
               "amp_ratio": _error_stats((ratio - truth["ratio"])[d]),
           },
           "single": {
               "centre": _error_stats((fit.mu1 - truth["centroid"])[single]),
               "width": _error_stats((fit.sigma1 - truth["width"])[single]),
           },
           "all": {
               "centroid": _error_stats((cen - truth["centroid"])[~failed]),
               "rms_width": _error_stats((wid - truth["width"])[~failed]),
           }}
    return out


def _profile_section(layout, science, profile_table, edges, notes):
    from .profiles import ProfileFits

    def truth_for(fit):
        lo, hi = np.asarray(fit.column_lo), np.asarray(fit.column_hi)
        if np.any(lo < 0) or np.any(hi <= lo):      # column ranges not recorded
            if len(lo) != len(edges) - 1:
                raise ValueError(f"{len(lo)} fitted bins but {len(edges) - 1} bins of bin_width")
            lo, hi = edges[:-1], edges[1:]
        return _truth_bins(profile_table, lo, hi)

    out = {"stage3": None, "stage4": None}
    if layout.median_fits.is_file():
        try:
            fit = read_profile_fits(layout.median_fits)
            out["stage3"] = _profile_errors(fit, truth_for(fit))
        except (PipelineError, ValueError, KeyError) as exc:
            notes.append(f"profile: stage 3 fits unreadable ({exc})")
    else:
        notes.append("profile: no stage 3 median_fits.fits, profile not scored")
    paths = [layout.final_fits(p) for p in science]
    if all(p.is_file() for p in paths):
        try:
            fits_ = [read_profile_fits(p) for p in paths]
            pooled = ProfileFits(**{k: np.concatenate([getattr(f, k) for f in fits_])
                                    for k in ProfileFits.__dataclass_fields__})
            truth = truth_for(fits_[0])
            truth = {k: np.tile(v, len(fits_)) for k, v in truth.items()}
            out["stage4"] = _profile_errors(pooled, truth)
            out["stage4"]["n_frames"] = len(fits_)
        except (PipelineError, ValueError, KeyError) as exc:
            notes.append(f"profile: stage 4 fits unreadable ({exc})")
    else:
        notes.append("profile: stage 4 final_fits missing, not scored")
    return out


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------
def _num(x, fmt="{:.3f}", width=10):
    text = "-" if x is None else fmt.format(x)
    return text.rjust(width)


def format_summary(scores) -> str:
    """The few numbers that say how a run did, as a short table.

    Parameters
    ----------
    scores : dict
        From :func:`score_run`.

    Returns
    -------
    str
    """
    def get(*keys):
        node = scores
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def num(value, fmt):
        return "-" if value is None else fmt.format(value)

    clean = ("background", "clean")
    depth = ("transit", "estimates")
    rows = [
        ("background residual RMS / oracle (no-CR trace pixels)",
         f"pipeline {num(get(*clean, 'pipeline', 'rms_over_oracle'), '{:.2f}')}, "
         f"after stage 5 {num(get(*clean, 'stage5', 'rms_over_oracle'), '{:.2f}')}, "
         f"master dark {num(get(*clean, 'master_dark', 'rms_over_oracle'), '{:.2f}')}"),
        ("binned spectrum bias (stage 5, median over bins)",
         num(get("spectrum", "estimates", "final", "median_bias"), "{:+.2%}")),
        ("transit depth (stage 5) vs injected",
         f"{num(get(*depth, 'final', 'depth'), '{:.4f}')} ± {num(get(*depth, 'final', 'depth_err'), '{:.4f}')}"
         f" vs {num(get('transit', 'injected'), '{:.4f}')} "
         f"(master dark {num(get(*depth, 'master_dark', 'depth'), '{:.4f}')})"),
        ("cosmic rays (stage 5)",
         f"recall {num(get('cosmic', 'recall'), '{:.2f}')}, "
         f"false-positive rate {num(get('cosmic', 'false_positive_rate'), '{:.1e}')}"),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows) + "\n"


def format_table(scores) -> str:
    """Render a score dict (from :func:`score_run`) as a plain-text table.

    Parameters
    ----------
    scores : dict

    Returns
    -------
    str
        Several blocks (background residual, spectrum and transit depth,
        profile, cosmic rays, notes), one line each per method; ``-`` marks
        a metric that could not be computed.
    """
    run = scores.get("run", {})
    lines = [f"Score of {run.get('output_dir')} against {run.get('truth_dir')}",
             f"  {run.get('n_science')} science frames, {run.get('n_trace_pixels')} trace pixels, "
             f"preset {run.get('preset')}, seed {run.get('seed')}",
             f"  background from K = {run.get('proxy_count')} proxies per pixel "
             f"({run.get('proxy_method')} rule, combined by {run.get('proxy_combine')}"
             f"{', with offsets' if run.get('proxy_offset') else ''})", ""]

    bg = scores.get("background")
    if bg:
        lines.append("In-trace background residual, ADU (image - true signal; same pixels per row)")
        head = f"  {'pixels':<20}{'statistic':<12}" + "".join(
            h.rjust(12) for h in ("pipeline", "master dark", "oracle", "stage 5"))
        lines.append(head)
        for kind, label in (("clean", "no CR"), ("clean_proxy_ok", "no CR, proxy ok"),
                            ("cosmic", "CR hit")):
            block = bg.get(kind)
            if not block:
                continue
            n = (block.get("oracle") or {}).get("n")
            rows = (("rms", "RMS"), ("robust_rms", "robust RMS"), ("median", "median"),
                    ("rms_over_oracle", "RMS/oracle"), ("robust_rms_over_oracle", "rob/oracle"))
            for j, (key, name) in enumerate(rows):
                cells = []
                for m in _METHODS:
                    st = block.get(m)
                    val = None if st is None else (1.0 if m == "oracle" and "over" in key
                                                   else st.get(key))
                    cells.append(_num(val, "{:.3f}", 12))
                tag = label if j == 0 else f"({n})" if j == 1 else ""
                lines.append(f"  {tag:<20}{name:<12}" + "".join(cells))
        inf = bg.get("infilled")
        if inf:
            lines.append(f"  stage-5 infilled pixels ({inf['n']}): "
                         f"RMS {_num(inf['rms'], width=0)}, "
                         f"robust RMS {_num(inf['robust_rms'], width=0)}, "
                         f"median {_num(inf['median'], width=0)}")
        if bg.get("proxy_cr_fraction") is not None:
            lines.append(f"  no-CR pixels whose proxy had a cosmic ray: "
                         f"{100 * bg['proxy_cr_fraction']:.2f} %")
        pm = bg.get("proxy_match_error")
        if pm:
            lines.append(f"  proxy match error (true background of pixel - of proxy): "
                         f"RMS {_num(pm['rms'], width=0)}, "
                         f"robust RMS {_num(pm['robust_rms'], width=0)}, "
                         f"median {_num(pm['median'], width=0)}")
        lines.append("")

    spec, tr = scores.get("spectrum"), scores.get("transit")
    if spec and tr:
        lines.append(f"Binned spectrum ({spec['n_bins']} bins of {spec['bin_width']} columns; "
                     f"relative bias, image/truth - 1) and transit depth "
                     f"(injected {tr['injected']:.4f}, {tr['n_in']} in / {tr['n_out']} out)")
        lines.append(f"  {'estimate':<22}" + "".join(h.rjust(11) for h in (
            "med bias", "bin scat", "white", "frame scat", "coverage", "depth", "± err", "Δ/σ")))
        labels = {"final": "stage 5 final", "stage2": "stage 2 (truth-fill)",
                  "master_dark": "master dark (t-fill)", "oracle": "oracle (truth-fill)",
                  "oracle_no_cr": "oracle - CR (t-fill)", "match_only": "match error only",
                  "truth": "truth signal"}
        for e in _ESTIMATES:
            s, d = spec["estimates"].get(e), tr["estimates"].get(e)
            if s is None:
                lines.append(f"  {labels[e]:<22}" + "not available".rjust(11))
                continue
            lines.append(f"  {labels[e]:<22}" + "".join([
                _num(s["median_bias"], "{:+.4f}", 11), _num(s["bias_scatter"], "{:.4f}", 11),
                _num(s["white_bias"], "{:+.4f}", 11), _num(s["frame_scatter"], "{:.4f}", 11),
                _num(s["coverage"], "{:.4f}", 11), _num(d["depth"], "{:.4f}", 11),
                _num(d["depth_err"], "{:.4f}", 11), _num(d["n_sigma"], "{:+.2f}", 11)]))
        lines.append(f"  trace mask holds {_num(spec['mask_flux_fraction'], '{:.4f}', 0)} "
                     f"of the true flux")
        lines.append("")

    prof = scores.get("profile") or {}
    for stage in ("stage3", "stage4"):
        p = prof.get(stage)
        if not p:
            continue
        extra = f", pooled over {p['n_frames']} frames" if "n_frames" in p else ""
        lines.append(f"Profile fits, {stage.replace('stage', 'stage ')}{extra}: {p['n_bins']} bins "
                     f"({p['n_double']} double, {p['n_single']} single, {p['n_failed']} failed, "
                     f"{p['n_fallback']} fallback); median |fit - truth| (median fit - truth)")
        groups = (("double", ("mu1", "mu2", "sigma1", "sigma2", "separation", "amp_ratio")),
                  ("single", ("centre", "width")), ("all", ("centroid", "rms_width")))
        for group, keys in groups:
            cells = []
            for k in keys:
                st = p[group][k]
                cells.append(f"{k} {_num(st['median_abs_error'], '{:.3f}', 0)} "
                             f"({_num(st['median_error'], '{:+.3f}', 0)})")
            lines.append(f"  {group:<7}" + ", ".join(cells))
        lines.append("")

    cr = scores.get("cosmic")
    if cr:
        lines.append(f"Cosmic rays (stage 5 COSMIC mask vs truth deposits > "
                     f"{cr['nsigma']:g} sigma)")
        rec = _num(cr["recall"], "{:.3f}", 0)
        fpr = _num(cr["false_positive_rate"], "{:.2e}", 0)
        prec = _num(cr["precision"], "{:.3f}", 0)
        lines.append(f"  recall {rec} ({cr['n_found']}/{cr['n_truth']}), false-positive rate {fpr} "
                     f"({cr['n_false']}/{cr['n_non_cr']}), precision {prec}; faint deposits "
                     f"flagged {cr['n_faint_flagged']}/{cr['n_faint']}")
        lines.append("")

    for note in scores.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines).rstrip() + "\n"


def _jsonable(obj):
    """Replace NaN/inf by None and numpy scalars by Python ones, recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _f(obj)
    return obj


def write_score(scores, path) -> Path:
    """Write the score as JSON, atomically (temporary file, then rename).

    Parameters
    ----------
    scores : dict
        From :func:`score_run`.
    path : str or Path
        Destination, normally ``output_dir/score.json``; its folder is
        created if needed.

    Returns
    -------
    Path
    """
    return write_text(path, json.dumps(_jsonable(scores), indent=2, allow_nan=False) + "\n")
