"""Transit depths that survive the systematics, fitted over one or several visits.

MPI-free science of stage 7 (numpy, scipy, batman, emcee):

* :mod:`.orbits` -- orbit windows from time gaps;
* :mod:`.transit` -- :class:`TransitModel` and fast light curves;
* :mod:`.systematics` -- a declarative basis and its design matrix;
* :mod:`.visit` -- :class:`Visit`, one light curve and its regressors;
* :mod:`.noise` -- the red-noise (time-averaging) test;
* :mod:`.likelihood` -- transit times linear systematics, solved exactly;
* :mod:`.fit` -- :func:`fit_light_curves` (least squares and emcee);
* :mod:`.common_mode` -- channels with the white light's systematics divided out.
"""

from .common_mode import COMMON_MODE_BASIS, COMMON_MODES, common_mode_visits, fit_channel
from .fit import TAU_MULTIPLE, TransitFit, VisitResult, fit_light_curves
from .noise import RedNoise, red_noise
from .orbits import DEFAULT_GAP_MINUTES, Orbits, find_orbits
from .systematics import (CONSTANT_ONLY, OFFSET, TEMPERATURE, WIDTH, Design, SystematicsSpec,
                          design_matrix)
from .transit import DepthTable, TransitCurve, TransitModel, signed_depth, signed_rp
from .visit import Visit

__all__ = ["COMMON_MODE_BASIS", "COMMON_MODES", "common_mode_visits", "fit_channel",
           "TAU_MULTIPLE", "TransitFit", "VisitResult", "fit_light_curves", "RedNoise",
           "red_noise", "DEFAULT_GAP_MINUTES", "Orbits", "find_orbits", "CONSTANT_ONLY", "OFFSET",
           "TEMPERATURE", "WIDTH", "Design", "SystematicsSpec", "design_matrix", "DepthTable",
           "TransitCurve", "TransitModel", "signed_depth", "signed_rp", "Visit"]
