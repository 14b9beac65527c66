#!/usr/bin/env python
"""Stage 3: Median Frame over the science frames, double-Gaussian fits of its column bins.

Usage: ``mpiexec -n 2 python 3_Median_Fits.py --config config.yaml``
Writes ``<output_dir>/median_frame.fits`` and ``<output_dir>/median_fits.fits``.
"""
import sys

from proxy_pixel_pipeline.runtime.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main(3, __doc__))
