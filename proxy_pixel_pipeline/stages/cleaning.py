"""Stage 5: infill empty and negative pixels, then remove cosmic rays.

Rank 0 first reads the whole series (:func:`.series.stage5_series`):
every trace pixel's value in every frame is predicted from the series
(:mod:`..science.series`: the frame's stage-4 profile model, the frame's flux, the
pixel's own correction learnt across frames), with its noise.  Then, frame by
frame on the ranks: a pixel far above its prediction is a cosmic ray
(``temporal_sigma``, grown into its neighbours); empty (hot, missing, no
proxy), negative (below ``-negative_sigma`` times the noise) and those pixels
take the prediction; L.A.Cosmic (``lacosmic.remove_cosmics``) then cleans
what the series cannot see.

Output, per science frame: ``output_dir/final/<science file name>`` with the
cleaned frame in the primary HDU and the extensions ``ERR`` (one-sigma error,
ADU), ``DQ`` (bits of :class:`..flags.DQFlag`, documented in ``FLAGDOC``),
``INFILLED`` (empty or negative pixels infilled) and ``COSMIC`` (cosmic-ray
pixels, either detector).
"""

from __future__ import annotations

import numpy as np

from ..flags import DQFlag
from ..io.fitsio import check_frames
from ..io.products import FinalFrame, read_spectral_mask
from ..runtime.parallel import bcast_array
from ..science.infill import clean_frame
from .base import FrameStage
from .series import stage5_series

__all__ = ["Cleaning"]

#: The layers of one frame that travel to a rank (frame-shaped, NaN off the trace).
_LAYERS = ("final", "prediction", "z", "noise", "dq")


class Cleaning(FrameStage):
    """Stage 5: infill and cosmic-ray removal, frame by frame after the series' prediction."""

    number = 5

    def check(self):
        shape = read_spectral_mask(self.layout.matches).shape
        check_frames([*map(self.layout.final_no_infill, self.science),
                           *map(self.layout.background, self.science)], shape)

    def prepare(self):
        cfg, comm = self.cfg, self.comm
        self.series = None
        if self.rank0:
            self.series = stage5_series(cfg, self.layout, self.science)
            self.log.info("%d frames; time-series cosmic-ray check %s", len(self.science),
                          "on" if self.series["temporal"] else
                          f"off (temporal_sigma 0 or fewer than {cfg.temporal_min_frames} frames)")
        self.region = bcast_array(comm, self.series["region"] if self.series else None)
        self.temporal = comm.bcast(self.series["temporal"] if self.series else None)

    def read_frame(self, i):
        # Everything a rank needs for one frame, as frame-shaped layers.
        stack = np.full((len(_LAYERS),) + self.region.shape, np.nan, np.float32)
        for k, name in enumerate(_LAYERS):
            stack[k].ravel()[self.series["trace"]] = self.series[name][i]
        return stack

    def process_frames(self, stack):
        cfg = self.cfg
        names = ("final", "err", "dq", "infilled", "cosmic", "grown")
        shape = stack.shape[2:]
        frames = [clean_frame(final, prediction, z, noise, dq, self.region, gain=cfg.gain,
                              temporal=self.temporal, temporal_sigma=cfg.temporal_sigma,
                              neighbor_sigma=cfg.temporal_neighbor_sigma,
                              fill_negative=cfg.fill_negative, negative_sigma=cfg.negative_sigma,
                              lacosmic_contrast=cfg.lacosmic_contrast,
                              lacosmic_cr_threshold=cfg.lacosmic_cr_threshold,
                              lacosmic_neighbor_threshold=cfg.lacosmic_neighbor_threshold,
                              lacosmic_maxiter=cfg.lacosmic_maxiter, grow=cfg.cosmic_grow)
                  for final, prediction, z, noise, dq in stack]
        dtypes = {"final": np.float32, "err": np.float32}
        return {name: (np.array([f[name] for f in frames]) if frames
                       else np.empty((0,) + shape, dtypes.get(name, np.uint8)))
                for name in names}

    def write_frame(self, i, out):
        src = self.science[i]
        frame = FinalFrame(out["final"], out["err"], out["dq"], out["infilled"] != 0,
                           out["cosmic"] != 0)
        hdr = self.observation_header(src)
        hdr["NINFILL"] = (int(out["infilled"].sum()), "pixels infilled from the profile fit")
        hdr["NCOSMIC"] = (int(out["cosmic"].sum()), "cosmic-ray pixels replaced")
        hdr["NCRGROWN"] = (int(out["grown"].sum()), "pixels next to a cosmic ray replaced")
        hdr["NCRTIME"] = (int(np.count_nonzero(out["dq"] & DQFlag.COSMIC_TEMPORAL)),
                          "cosmic-ray pixels found along the time series")
        self.write("final", frame.data, frame=src, header=hdr, extensions=frame.extensions(),
                   bunit="adu")
        self.log.debug("%s: %d infilled, %d cosmic-ray pixels", src.name, hdr["NINFILL"],
                       hdr["NCOSMIC"])

    def finish(self):
        self.log.info("wrote %d final frames under %s", len(self.science), self.layout.root / "final")
