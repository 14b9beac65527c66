"""The stage runners: each stage's declaration (:mod:`..runtime.registry`) wired to files
and MPI ranks on the stage base (:mod:`.base`).

A runner reads its inputs on rank 0, spreads the work over the ranks and writes
the outputs; the science is in :mod:`..science`.  :mod:`.series` (stage 5's
series, shared with its figures) imports no MPI.
"""
