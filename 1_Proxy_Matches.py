#!/usr/bin/env python
"""Stage 1: find a proxy (non-spectral) pixel for every spectral pixel.

Usage: ``mpiexec -n 2 python 1_Proxy_Matches.py --config config.yaml``
Writes ``<output_dir>/proxy_matches.fits``.
"""
import sys

from proxy_pixel_pipeline.runtime.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main(1, __doc__))
