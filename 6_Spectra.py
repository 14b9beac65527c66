#!/usr/bin/env python
"""Stage 6: optimal (Horne 1986) and box spectra, and light curves with each frame's
systematics regressors.

Usage: ``mpiexec -n 2 python 6_Spectra.py --config config.yaml``
Writes ``<output_dir>/spectra/<science file name>`` and ``<output_dir>/light_curves.fits``.
"""
import sys

from proxy_pixel_pipeline.runtime.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main(6, __doc__))
