"""The robust spread used throughout: ``MAD_TO_SIGMA * median(|x - median(x)|)``."""

__all__ = ["MAD_TO_SIGMA"]

#: Median absolute deviation -> standard deviation, for Gaussian noise (1 / Phi^-1(3/4)).
MAD_TO_SIGMA = 1.4826
