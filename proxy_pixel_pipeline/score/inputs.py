"""What a run is compared on: its products, the baselines, and the truth, frame by frame.

:class:`RunInputs` gathers, for a config, the run's stage outputs (those that
exist), the spectral mask, the column bins, the truth, and two things derived
from the inputs that the metrics compare the pipeline with:

* the *master dark* ``MD``, the per-pixel median of the raw dark frames
  (missing samples skipped): the classical background, which cannot follow
  the CCD temperature from frame to frame;
* the stage-1 *proxies* of each trace pixel and, per frame, their truth: was
  one of them hit by a cosmic ray, and ``BG_proxy``, the median of their true
  expected backgrounds (plus their offsets ``RES_MEDIAN`` with
  ``proxy_offset``), i.e. the stage-2 combination for one proxy or
  ``proxy_combine: median`` applied to noise-free values.

:meth:`RunInputs.frames` then yields one :class:`Frame` per science frame
with everything the per-frame metrics need.  A stage whose outputs are
missing gives ``None`` and a note (naming the script to run), never an error.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime import registry
from ..errors import PipelineError
from ..io.fitsio import read_image
from ..science import lightcurves as lc
from ..science.background import combine_proxies
from ..science.extraction import normalise_profile, optimal_extract
from ..runtime.layout import Layout
from ..io.products import FinalFrame, read_matches
from ..science.profiles import bin_edges
from .truth import read_truth

__all__ = ["Frame", "Proxies", "RunInputs", "stage_number", "stage_files", "master_dark",
           "mask_fraction", "read_proxies", "read_stage5", "same_shape"]


def stage_number(output) -> int:
    """Number of the stage that writes the output called ``output``.

    Parameters
    ----------
    output : str
        An output name of :mod:`proxy_pixel_pipeline.runtime.registry`, e.g. ``final``.
    """
    return registry.stage_of_output(output).number


@dataclass
class Proxies:
    """Each trace pixel's stage-1 proxies as image-shaped arrays of shape (K, ny, nx).

    Attributes
    ----------
    rows, columns : ndarray of int
        Position of the pixel's k-th proxy (-1: none, and outside the trace).
    offsets : ndarray of float
        What stage 2 adds to the k-th proxy's value (``RES_MEDIAN`` with
        ``proxy_offset``, else 0).
    """

    rows: np.ndarray
    columns: np.ndarray
    offsets: np.ndarray

    @property
    def present(self):
        """(K, ny, nx) bool: the k-th proxy exists."""
        return self.rows >= 0

    def in_frame(self, background, cosmic):
        """The proxies' truth in one frame.

        Parameters
        ----------
        background, cosmic : ndarray, shape (ny, nx)
            True expected background and cosmic-ray charge of the frame, ADU.

        Returns
        -------
        proxy_background : ndarray, shape (ny, nx)
            ``BG_proxy``: median over the pixel's proxies of ``background +
            offset`` (stage 2's :func:`~proxy_pixel_pipeline.science.background.combine_proxies`
            with ``median``; NaN without a proxy).
        hit : ndarray of bool, shape (ny, nx)
            One of the pixel's proxies holds a cosmic ray.
        """
        ok = self.present
        yy, xx = np.where(ok, self.rows, 0), np.where(ok, self.columns, 0)
        hit = (ok & (cosmic[yy, xx] > 0)).any(axis=0)
        values = np.where(ok, background[yy, xx] + self.offsets, np.nan)
        has = ok.any(axis=0)
        proxy_background = np.full(background.shape, np.nan)
        proxy_background[has] = combine_proxies(values[:, has].T, "median")[0]
        return proxy_background, hit


def read_proxies(layout, mask, offsets, notes):
    """The stage-1 proxies of each trace pixel (:class:`Proxies`), or None.

    Parameters
    ----------
    layout : Layout
    mask : ndarray of bool
        Spectral mask.
    offsets : bool
        The run's ``proxy_offset``.
    notes : list of str
        Receives why the table could not be read.

    Returns
    -------
    Proxies or None
        None without a readable match table.
    """
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
    return Proxies(py, px, off)


def master_dark(cfg, mask, notes):
    """Median of the raw darks on the trace pixels (NaN elsewhere), or None.

    Parameters
    ----------
    cfg : Config
    mask : ndarray of bool
        Spectral mask.
    notes : list of str
        Receives why the darks could not be read.

    Returns
    -------
    ndarray of float or None
    """
    try:
        paths = cfg.dark_paths()
        values = np.empty((len(paths), int(mask.sum())), np.float32)
        for i, path in enumerate(paths):
            values[i] = same_shape(read_image(path, cfg.missing_value), mask, path, "mask's")[mask]
    except PipelineError as exc:
        notes.append(f"master dark unavailable: {exc}")
        return None
    out = np.full(mask.shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # a pixel missing in every dark
        out[mask] = np.nanmedian(values, axis=0)
    return out


def same_shape(image, mask, path, whose="spectral mask's"):
    """``image``, or a PipelineError if its shape is not the spectral mask's."""
    if image.shape != mask.shape:
        raise PipelineError(f"{path}: shape {image.shape} differs from the {whose} "
                            f"{mask.shape}")
    return image


def read_stage5(path):
    """Cleaned frame (float64), INFILLED and COSMIC masks (bool) and DQ bits of a stage-5 file
    (:class:`~..io.products.FinalFrame`).

    Raises
    ------
    PipelineError
        Unreadable, or without those extensions.
    """
    frame = FinalFrame.read(path)
    return frame.data.astype(np.float64), frame.infilled, frame.cosmic, frame.dq.astype(np.int64)


def stage_files(paths, notes, output):
    """``paths`` if every file exists, else None with a note naming the script to run.

    Parameters
    ----------
    paths : list of Path
        One file per science frame of the output called ``output``.
    notes : list of str
    output : str
        Output name (see :mod:`proxy_pixel_pipeline.runtime.registry`), e.g. ``final_no_infill``.
    """
    missing = [p for p in paths if not Path(p).is_file()]
    if not missing:
        return list(paths)
    stage = registry.stage_of_output(output)
    notes.append(f"stage {stage.number} {output}: {len(missing)} of {len(paths)} files missing "
                 f"(e.g. {missing[0]}); run {stage.script}")
    return None


@dataclass
class Frame:
    """One science frame with its truth and what each method made of it.

    Images are float64 ADU of the spectral mask's shape; ``None`` where the
    stage (or baseline) is not available.

    Attributes
    ----------
    index : int
        Position in the run's science frames.
    signal, background, cosmic : ndarray
        Truth: ``SIG``, ``BG``, ``CR``.
    valid : ndarray of bool
        In the trace and not missing.
    science : ndarray
        Raw science frame ``S`` (NaN where missing).
    stage2 : ndarray or None
        Stage-2 Final Frame ``F2``.
    stage5, infilled, flagged, dq : ndarray or None
        Stage-5 frame ``F5``, its INFILLED and COSMIC masks (bool) and DQ bits.
    master_dark : ndarray or None
        ``MD`` (the same for every frame).
    proxy_background, proxy_hit : ndarray or None
        ``BG_proxy`` and whether a proxy holds a cosmic ray (see
        :meth:`Proxies.in_frame`).
    """

    index: int
    signal: np.ndarray
    background: np.ndarray
    cosmic: np.ndarray
    valid: np.ndarray
    science: np.ndarray
    stage2: np.ndarray | None
    stage5: np.ndarray | None
    infilled: np.ndarray | None
    flagged: np.ndarray | None
    dq: np.ndarray | None
    master_dark: np.ndarray | None
    proxy_background: np.ndarray | None
    proxy_hit: np.ndarray | None


class RunInputs:
    """A run's config, products, baselines and truth, read once.

    Parameters
    ----------
    cfg : Config
        The run's configuration.
    truth_dir : Path
        Folder of the truth files.

    Attributes
    ----------
    cfg, layout, truth
        The config, its :class:`~proxy_pixel_pipeline.runtime.layout.Layout` and the :class:`~.truth.Truth`.
    science : list of Path
        Science frames; ``transit`` and ``flux_scale`` their truth.
    mask : ndarray of bool
        Spectral mask (the trace); ``edges`` the column bins' edges.
    stage2_paths, stage5_paths : list of Path or None
        The frames of stage 2 (``final_no_infill/``) and 5 (``final/``), None
        unless all exist.
    master_dark : ndarray or None
    proxies : Proxies or None
    notes : list of str
        What could not be used, and why.
    """

    def __init__(self, cfg, truth_dir):
        self.cfg = cfg
        self.layout = Layout(cfg.output_dir)
        self.notes = []
        self.truth = read_truth(truth_dir)
        self.science = cfg.science_paths()
        self.names = [Path(p).name for p in self.science]
        self.transit, self.flux_scale = self.truth.frames_of(self.names)
        self.throughput = self.truth.throughput_of(self.names)
        self.mask = cfg.pixel_list("spectral_mask")
        self.edges = bin_edges(self.mask.shape[1], cfg.bin_width)
        self.stage2_paths = stage_files([self.layout.final_no_infill(p) for p in self.science],
                                        self.notes, "final_no_infill")
        self.stage5_paths = stage_files([self.layout.final(p) for p in self.science],
                                        self.notes, "final")
        self.master_dark = master_dark(cfg, self.mask, self.notes)
        self.proxies = read_proxies(self.layout, self.mask, cfg.proxy_offset, self.notes)

    @functools.cached_property
    def oracle_columns(self):
        """The oracle's column fluxes (n_frames, n_columns) of this run, extracted once
        (:func:`oracle_columns`)."""
        return oracle_columns(self.cfg, self.truth, self.mask, self.science)

    def frame(self, i) -> Frame:
        """Read science frame ``i``, its truth and its stage-2 and stage-5 frames."""
        mask, path = self.mask, self.science[i]
        truth = self.truth.frame(self.names[i])
        same_shape(truth.signal, mask, self.truth.folder / self.names[i])
        science = same_shape(read_image(path, self.cfg.missing_value, dtype=np.float64), mask, path)
        stage2 = stage5 = infilled = flagged = dq = None
        if self.stage2_paths:
            p2 = self.stage2_paths[i]
            stage2 = same_shape(read_image(p2, dtype=np.float64), mask, p2)
        if self.stage5_paths:
            p5 = self.stage5_paths[i]
            stage5, infilled, flagged, dq = (same_shape(a, mask, p5) for a in read_stage5(p5))
        proxy_background = proxy_hit = None
        if self.proxies is not None:
            proxy_background, proxy_hit = self.proxies.in_frame(truth.background, truth.cosmic)
        return Frame(i, truth.signal, truth.background, truth.cosmic, mask & ~truth.missing,
                     science, stage2, stage5, infilled, flagged, dq, self.master_dark,
                     proxy_background, proxy_hit)

    def frames(self):
        """Yield a :class:`Frame` for each science frame, in order."""
        for i in range(len(self.science)):
            yield self.frame(i)


def mask_fraction(truth, mask, names):
    """Each frame's share of the true signal inside the spectral mask, per column
    (n_frames, n_columns; 1 where a column holds no signal): light that pointing jitter
    smears or moves beyond the mask, a systematic like the slit loss."""
    out = []
    for name in names:
        signal = truth.frame(Path(name).name).signal
        total = signal.sum(axis=0)
        inside = np.where(mask, signal, 0.0).sum(axis=0)
        out.append(np.where(total > 0, inside / np.where(total > 0, total, 1.0), 1.0))
    return np.array(out)


def oracle_columns(cfg, truth, mask, science):
    """The oracle's per-frame column fluxes (n_frames, n_columns), in ``science``'s order:
    each frame's true background subtracted, optimally extracted with the true profile
    (every missing or cosmic-ray pixel masked, the true noise), columns with too little
    of the profile usable filled as stage 6 fills them."""
    noise2_floor = (truth.read_noise / truth.gain) ** 2 + 1.0 / 12.0
    fluxes = []
    for path in science:
        raw = read_image(path, cfg.missing_value).astype(float)
        t = truth.frame(Path(path).name)
        data = raw - t.background
        usable = mask & ~t.missing & (t.cosmic <= 0) & np.isfinite(raw)
        err = np.sqrt(np.maximum(t.background - truth.bias, 0.0) / truth.gain + noise2_floor)
        profile = normalise_profile(t.signal, mask)
        fluxes.append(optimal_extract(data, err, profile, usable, truth.gain,
                                      sigma=cfg.extract_sigma))
    flux = np.array([o.flux for o in fluxes])
    bad = np.array([o.weight < cfg.extract_min_weight for o in fluxes])
    return lc.fill_columns(flux, np.array([o.flux_err for o in fluxes]), bad)[0]
