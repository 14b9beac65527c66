"""Proxy Pixel Pipeline: CUTE CubeSat spectral frames to transit depths per wavelength.

Seven stages, each a top-level script (or ``ppp run``) on this package; the registry
(:mod:`~proxy_pixel_pipeline.runtime.registry`) declares them:

1. proxy matches over the darks (:mod:`~proxy_pixel_pipeline.science.matching`);
2. Background Frames from the proxies and Final Frames = Science - Background
   (:mod:`~proxy_pixel_pipeline.science.background`);
3. and 4. double-Gaussian column profiles of the Median Frame and of each Final Frame
   (:mod:`~proxy_pixel_pipeline.science.profiles`);
5. cosmic rays and infill (:mod:`~proxy_pixel_pipeline.science.series`,
   :mod:`~proxy_pixel_pipeline.science.cosmic_rays`,
   :mod:`~proxy_pixel_pipeline.science.infill`);
6. optimal extraction and light curves (:mod:`~proxy_pixel_pipeline.science.extraction`,
   :mod:`~proxy_pixel_pipeline.science.lightcurves`);
7. the transit and each visit's systematics, one visit or several
   (:mod:`~proxy_pixel_pipeline.science.transit_fit`).

The folders are the layers (``docs/architecture.md``): ``io/``, ``science/``,
``runtime/``, ``stages/`` (the stage base and runners), ``simulate/``, ``score/``,
``plots/``, ``report/``.
"""

__version__ = "0.1.0"
