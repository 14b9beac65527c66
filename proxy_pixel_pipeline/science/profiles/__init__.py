"""Double-Gaussian fits of the cross-dispersion profile of the CUTE spectral trace.

Stages 3 and 4 of the pipeline.  The CUTE telescope was found defocused on
orbit compared with pre-flight tests (Egan et al. 2023), so the image of the
slit on the CCD is not one Gaussian across the trace but two: the
cross-dispersion (column) profile is well described by

.. math::

    f(y) = A_1 e^{-(y-\\mu_1)^2 / 2\\sigma_1^2}
         + A_2 e^{-(y-\\mu_2)^2 / 2\\sigma_2^2} + c,

where ``y`` is the row (cross-dispersion pixel), ``A`` are peak heights (ADU),
``mu`` centres and ``sigma`` widths (pixels) and ``c`` a constant (the
~1000 ADU bias/background in the Median Frame, ~0 in a background-subtracted
Final Frame).  The two peaks move apart along the dispersion axis and merge
at one end of the frame, where a single Gaussian is fitted instead.

To beat the noise and keep the number of fits small, columns are grouped in
bins (25 columns by default) and each row is replaced by its median over the
bin's columns (:func:`binned_profiles`).  Then

* stage 3, :func:`fit_median_profiles`, fits every bin of the Median Frame
  (per-pixel median of the raw science frames) freely, choosing between the
  single and the double Gaussian;
* stage 4, :func:`fit_final_profiles`, fits every bin of one Final Frame
  (science - background) with the peak ratio ``amp1/amp2`` held at the Median
  Frame's value, starting from the Median Frame fit, and falls back to the
  Median Frame fit scaled to the data when the free fit is not physical;
* :func:`model_frame` turns the fits into a model image used to infill
  empty pixels (:mod:`~proxy_pixel_pipeline.science.infill`).

The code is split by job:

* :mod:`.model`: the model :func:`double_gaussian`, its Jacobian and
  :func:`model_frame`;
* :mod:`...io.profile_fits`: the result container :class:`ProfileFits` (the product: no fitting code);
* :mod:`.binning`: :func:`bin_edges` and :func:`binned_profiles`;
* :mod:`.engine`: the generic bounded least-squares engine shared by both stages
  (input checks, per-bin data, start values, linear parameter maps);
* :mod:`.median`: stage 3's single/double choice (F-test);
* :mod:`.final`: stage 4's fixed-ratio fit with its fallback.

Conventions: peak 1 is always the one at the lower row (``mu1 <= mu2``, the
fit is parametrized with the separation ``mu2 - mu1 >= 0``); the results are a
:class:`ProfileFits` (one entry per column bin) with bit flags
:class:`FitFlag`.  Everything is vectorized over pixels; Python loops run over
bins only (~82 for a CUTE frame), each fit taking about a millisecond.
"""

from ...flags import FitFlag
from .binning import bin_edges, binned_profiles
from .final import fit_final_profiles, scale_reference
from .median import fit_median_profiles
from .model import double_gaussian, model_frame
from ...io.profile_fits import PARAM_NAMES, ProfileFits

__all__ = [
    "FitFlag",
    "ProfileFits",
    "PARAM_NAMES",
    "double_gaussian",
    "bin_edges",
    "binned_profiles",
    "fit_median_profiles",
    "fit_final_profiles",
    "scale_reference",
    "model_frame",
]
