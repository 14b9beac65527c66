"""Proxy Pixel Pipeline: background removal for CUTE CubeSat spectral frames.

The pipeline has five stages, each a top-level script that calls this package:

1. :mod:`~proxy_pixel_pipeline.science.matching` finds, for every spectral pixel, a
   non-spectral *proxy* pixel that behaves the same over the dark frames.
2. :mod:`~proxy_pixel_pipeline.science.background` builds Background Frames from the proxies
   and Final Frames = Science - Background.
3. and 4. :mod:`~proxy_pixel_pipeline.science.profiles` fits double-Gaussian column
   profiles to the Median Frame and to each Final Frame.
5. :mod:`~proxy_pixel_pipeline.science.infill` infills empty and negative pixels from
   the fits and removes cosmic rays with lacosmic.

:mod:`~proxy_pixel_pipeline.stages` wires the stages to files and MPI.
"""

__version__ = "0.1.0"
