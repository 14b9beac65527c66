#!/usr/bin/env python
"""Stage 7: fit the transit and each visit's systematics to the white and channel light curves.

Usage: ``mpiexec -n 2 python 7_Transit_Fit.py --config config.yaml``
Writes ``<output_dir>/transit_depths.fits``, ``transit_fit.fits`` and ``transit_samples.fits``;
with ``joint_visits`` in the config, the listed visits are fitted jointly with this one.
"""
import sys

from proxy_pixel_pipeline.runtime.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main(7, __doc__))
