"""Proxy pixel matching: for each spectral pixel, the candidates that behave alike.

A spectral pixel's *proxy* is the non-spectral pixel whose time series over the
dark frames follows its own.  For every pair (spectral pixel ``s``, candidate
``c``) the residual series ``r = s - c`` over the dark frames where both are
valid is scored by one of two rules (Escobar & the CUTE team, Proxy Pixel
Pipeline):

``lsq``
    Mean squared residual, ``mean(r**2) = mean(r)**2 + var(r)``; smallest wins.
``median``
    Two steps: the ``median_candidates`` (k) candidates whose residual median
    is closest to zero, then among those the smallest residual standard
    deviation (population, ``ddof=0``).

Ties go to the earlier candidate (input order), with ``|median|`` then std as
tie-breakers, as a loop over candidates with numpy would choose.  Two stds
that differ only in the last bit (summation order) count as different, so
such near-twins may come out in either order (at the K-th place, either one
is kept); the choice is still the same on any number of ranks.

The work is ``N_spectral x N_candidates x N_darks``, about 10**13 operations
on a full CUTE frame, so the design follows the hardware (``bench/`` measures
it):

Matrix products
    Candidates are split once into *complete* ones (no missing sample: most
    of them) and the few *partial* ones.  For complete candidates ``C`` and a
    block of spectral pixels ``S`` (zero-filled where missing) one float32 BLAS
    product ``G = (-2 S) @ C.T`` gives every pair's sum of squared residuals,
    ``|s|^2 + G + |c|^2``; the residual sum is the rank-one ``sum(s) -
    sum(c)``.  Spectral pixels with missing samples get the exact correction
    ``- sum of c^2 over their missing frames`` from a small product over those
    frames only; partial candidates use the general masked sums, still one
    matrix product each (``n = Ws @ Wc.T``, ``sum r^2 = [S0^2, -2 S0, Ws] @
    [Wc, C0, C0^2].T``, ``sum r = [S0, -Ws] @ [Wc, C0].T``).  Missing samples
    are thus handled exactly, never by dropping pixels.  Data are
    frame-centred (a per-frame constant cancels in every residual) so that
    float32 keeps its precision.  Candidates go in chunks (``candidate_chunk``)
    small enough that ``G`` stays in cache for the scans below.

Compiled scans (:mod:`.kernels`: numba when installed, else numpy, with the same results)
    ``lsq`` (and ``median_mode='fast'``): one pass over ``G`` keeps each
    pixel's ``prefilter_count`` (M) best candidates by the float32 score in a
    per-pixel heap whose worst entry is a running threshold; a vectorised
    float32 compare (with a safe rounding margin) screens the values, so almost
    every value costs one compare.  The final choice among the M is made from
    residuals recomputed exactly in float64.  ``fast`` median mode applies the
    median rule to those M only: cheaper, but it can miss members of the k
    closest (see ``bench/RESULTS.md`` for how often).

    ``median_mode='exact'``: each pixel keeps its k best keys ``(|median|,
    std, index)`` found so far; ``tau`` is the k-th ``|median|`` and ``sig``
    the k-th std.  Since ``|median - mean| <= std`` for every sample, a pair
    can enter only if ``|mean| - std <= tau``; and a pair whose std exceeds
    ``sig`` must have ``|median| < tau`` strictly, impossible once ``tau`` is
    0 (the usual case: dark frames are integers, so many residual medians are
    exactly 0).  Both bounds come from the sums above with explicit float32
    rounding margins (never dropping a competitor); a vectorised float32
    screen implied by them passes about 1 pair in 10**3 once the keys settle.
    A passing pair then gets an exact counting test (at least half the
    residuals ``<= tau`` and half ``>= -tau``), its exact std and, only if it
    still competes, its exact median; the keys are updated at once, so the
    bounds tighten during the scan.  Keys start from the ``median_seeds``
    candidates nearest in mean level.  The result equals applying the rule to
    all candidates.

Results depend only on the block and the parameters, never on which MPI rank
computes it, how candidates are chunked, or whether numba is installed (the
environment variable ``PPP_KERNELS=numpy`` or ``numba`` forces one
implementation; see :mod:`.kernels`).

Modules
-------
:mod:`.candidates`
    :class:`CandidateSet` and the spectral blocks, laid out for the sums.
:mod:`.driver`
    :func:`match_block` (the passes above), :func:`estimate_work`,
    :func:`kernel_threads` (and ``match_block(..., phases=dict)`` times its phases).
:mod:`.rules`
    :class:`MatchResult`, the rules applied to exactly scored pairs, and
    :func:`reference_match`, the rule applied literally.
:mod:`.kernels`
    The scan kernels (``from proxy_pixel_pipeline.science.matching import
    kernels``), implemented in :mod:`.kernels_numpy` and
    :mod:`.kernels_numba`, their arguments in :mod:`.types`.
"""

from __future__ import annotations

from .candidates import CandidateSet
from .driver import estimate_work, have_numba, kernel_threads, match_block
from .rules import MatchResult, pair_statistics, reference_match

__all__ = ["MatchResult", "CandidateSet", "match_block", "pair_statistics", "kernel_threads",
           "estimate_work", "have_numba", "reference_match"]
