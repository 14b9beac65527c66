#!/usr/bin/env python
"""Stage 6: optimal (Horne 1986) and box spectra, light curves and transit depths.

Usage: ``mpiexec -n 2 python 6_Spectra.py --config config.yaml``
Writes ``<output_dir>/spectra/<science file name>``, ``<output_dir>/light_curves.fits``
and ``<output_dir>/transit_depths.fits``.
"""
import sys

from proxy_pixel_pipeline.runtime.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main(6, __doc__))
