"""Checkpoints of finished work blocks, so that a killed run resumes where it was.

A :class:`BlockStore` is a folder named by a key that digests everything the
blocks' results depend on (configuration, input files, block size); a rerun
with the same key finds the blocks already done, a run with another key never
sees them.  Each block is one ``.npz`` file written under a temporary name and
renamed when complete, so a block killed mid-write simply is not there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path

__all__ = ["BlockStore", "run_key"]


def run_key(*parts, files=()) -> str:
    """Digest of values and of input files' names, sizes and modification times."""
    stamp = [str(p) for p in parts]
    for f in files:
        st = os.stat(f)
        stamp.append(f"{Path(f).name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]


class BlockStore:
    """Finished blocks of one run.

    Parameters
    ----------
    folder : str or Path
        Parent folder of all checkpoints of this kind of work.
    key : str
        Run key (see :func:`run_key`).
    """

    def __init__(self, folder, key):
        self.parent = Path(folder)
        self.folder = self.parent / key

    def _path(self, block):
        return self.folder / f"block_{block:07d}.npz"

    def done(self) -> np.ndarray:
        """Indices of the blocks already saved, sorted."""
        if not self.folder.is_dir():
            return np.zeros(0, int)
        ids = [int(p.stem[6:]) for p in self.folder.glob("block_*.npz")]
        return np.array(sorted(ids), int)

    def save(self, block, **arrays):
        """Save one finished block's arrays atomically."""
        with atomic_path(self._path(block)) as tmp:
            np.savez(tmp, **arrays)

    def load(self, block) -> dict:
        """The arrays of a saved block."""
        with np.load(self._path(block)) as data:
            return {name: data[name] for name in data.files}

    def clear(self):
        """Remove every checkpoint of this kind of work (after a complete run)."""
        shutil.rmtree(self.parent, ignore_errors=True)
        try:
            self.parent.parent.rmdir()        # the .checkpoints folder, if now empty
        except OSError:
            pass
