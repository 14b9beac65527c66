#!/usr/bin/env python
"""Stage 4: double-Gaussian fits of each Final Frame's column bins (peak ratio of stage 3).

Usage: ``mpiexec -n 2 python 4_Final_Fits.py --config config.yaml``
Writes ``<output_dir>/final_fits/<science file name>``.
"""
import sys

from proxy_pixel_pipeline.runtime.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main(4, __doc__))
