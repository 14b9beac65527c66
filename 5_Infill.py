#!/usr/bin/env python
"""Stage 5: infill empty and negative pixels from the fits, then remove cosmic rays (lacosmic).

Usage: ``mpiexec -n 2 python 5_Infill.py --config config.yaml``
Writes ``<output_dir>/final/<science file name>``.
"""
import sys

from proxy_pixel_pipeline.runtime.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main(5, __doc__))
