"""The five stages wired to files and MPI ranks; each module has one ``run``.

The science lives in the modules one level up (:mod:`..matching`,
:mod:`..frames`, :mod:`..profiles`, :mod:`..infill`); these modules read the
inputs on rank 0, spread the work over the ranks, and write the outputs.
"""
