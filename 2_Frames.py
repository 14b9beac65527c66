#!/usr/bin/env python
"""Stage 2: Background Frame and Final Frame (Science - Background) per science frame.

Usage: ``mpiexec -n 2 python 2_Frames.py --config config.yaml``
Writes ``<output_dir>/background/`` and ``<output_dir>/final_no_infill/``.
"""
import sys

from proxy_pixel_pipeline.runtime.cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main(2, __doc__))
