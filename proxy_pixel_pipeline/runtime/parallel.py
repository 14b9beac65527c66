"""MPI helpers: contiguous work partitions and numpy-buffer scatter/gather.

Rank 0 reads and writes files; work travels with ``Scatterv``/``Gatherv`` on
numpy buffers (not pickled lists) in uneven, contiguous chunks, so every rank
holds a slice of the global order and gathering restores it.  The same code
runs without ``mpiexec`` as a single rank.
"""

from __future__ import annotations

import os

import numpy as np
from mpi4py import MPI

__all__ = ["world", "partition", "scatter_rows", "gather_rows", "bcast_array",
           "threads_per_rank", "limit_blas_threads"]


def world():
    """The communicator of all ranks (a single rank without ``mpiexec``)."""
    return MPI.COMM_WORLD


def partition(weights, n_parts) -> np.ndarray:
    """Split items into ``n_parts`` contiguous runs of near-equal total weight.

    Parameters
    ----------
    weights : array_like of float, or int
        Work of each item in order (or a number of items of equal work).
    n_parts : int
        Number of ranks.

    Returns
    -------
    ndarray of int, shape (n_parts,)
        Items per part, summing to the number of items.
    """
    w = np.ones(int(weights)) if np.ndim(weights) == 0 else np.asarray(weights, float)
    if len(w) == 0:
        return np.zeros(n_parts, int)
    cum = np.cumsum(w)
    # Part p ends at the first item whose cumulative work reaches (p+1)/n of the total.
    targets = cum[-1] * np.arange(1, n_parts) / n_parts
    ends = np.searchsorted(cum, targets, side="left") + 1
    ends = np.clip(np.r_[ends, len(w)], 0, len(w))
    ends = np.maximum.accumulate(ends)
    return np.diff(np.r_[0, ends]).astype(int)


def bcast_array(comm, array=None, root=0) -> np.ndarray:
    """Broadcast a numpy array (shape and dtype known only on ``root``)."""
    meta = comm.bcast(None if comm.rank != root else (array.shape, array.dtype.str), root=root)
    if comm.rank != root:
        array = np.empty(meta[0], np.dtype(meta[1]))
    if array.size:
        comm.Bcast(_bytes(array), root=root)
    return array


def scatter_rows(comm, array, counts, root=0) -> np.ndarray:
    """Scatter consecutive runs of ``counts[r]`` rows of ``array`` to rank r.

    Parameters
    ----------
    comm : MPI communicator
    array : ndarray or None
        The full array, significant on ``root`` only (rows along axis 0).
    counts : sequence of int
        Rows per rank (same on all ranks).

    Returns
    -------
    ndarray
        This rank's rows.
    """
    meta = comm.bcast(None if comm.rank != root else (array.shape[1:], array.dtype.str), root=root)
    row_shape, dtype = meta[0], np.dtype(meta[1])
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
    local = np.empty((counts[comm.rank],) + tuple(row_shape), dtype)
    sizes = np.asarray(counts, np.int64) * row_bytes
    displs = np.r_[0, np.cumsum(sizes)[:-1]]
    send = [_bytes(np.ascontiguousarray(array)), (sizes, displs), MPI.BYTE] if comm.rank == root else None
    comm.Scatterv(send, [_bytes(local), MPI.BYTE], root=root)
    return local


def gather_rows(comm, local, counts, root=0):
    """Gather every rank's rows back into one array on ``root`` (None elsewhere)."""
    local = np.ascontiguousarray(local)
    row_bytes = int(np.prod(local.shape[1:], dtype=np.int64)) * local.dtype.itemsize
    sizes = np.asarray(counts, np.int64) * row_bytes
    displs = np.r_[0, np.cumsum(sizes)[:-1]]
    out = None
    recv = None
    if comm.rank == root:
        out = np.empty((int(np.sum(counts)),) + local.shape[1:], local.dtype)
        recv = [_bytes(out), (sizes, displs), MPI.BYTE]
    comm.Gatherv([_bytes(local), MPI.BYTE], recv, root=root)
    return out


def _bytes(array):
    """A writable byte view of a contiguous array, for MPI.BYTE transfers."""
    return array.reshape(-1).view(np.uint8)


def threads_per_rank(comm, requested=0) -> int:
    """BLAS threads for each rank so that ranks x threads fits the node's cores.

    Parameters
    ----------
    requested : int
        Explicit number of threads; 0 chooses ``cores // ranks on this node``.
    """
    if requested > 0:
        return requested
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        # Under mpiexec each rank may be pinned to one core: count the node's cores.
        cores = max(cores or 1, os.cpu_count() or 1) if node.size > 1 else (cores or 1)
        return max(1, cores // node.size)
    finally:
        node.Free()


def limit_blas_threads(n_threads):
    """Context manager limiting BLAS/OpenMP threads (threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(n_threads))
