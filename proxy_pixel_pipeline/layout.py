"""Where each stage's outputs live under ``output_dir`` (a contract users' tools read)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["Layout"]


class Layout:
    """Output file names of a run.

    Parameters
    ----------
    output_dir : str or Path
        The config's ``output_dir``.
    """

    def __init__(self, output_dir):
        self.root = Path(output_dir)

    @property
    def matches(self) -> Path:
        """Stage 1: match table (FITS, extensions MATCHES and PIXFLAGS)."""
        return self.root / "proxy_matches.fits"

    @property
    def checkpoints(self) -> Path:
        """Stage 1: finished blocks of an interrupted run."""
        return self.root / ".checkpoints" / "proxy_matches"

    def background(self, science) -> Path:
        """Stage 2: Background Frame of a science frame (same file name)."""
        return self.root / "background" / Path(science).name

    def final_no_infill(self, science) -> Path:
        """Stage 2: Final Frame before infill (same file name)."""
        return self.root / "final_no_infill" / Path(science).name

    @property
    def median_frame(self) -> Path:
        """Stage 3: Median Frame image."""
        return self.root / "median_frame.fits"

    @property
    def median_fits(self) -> Path:
        """Stage 3: double-Gaussian fits of the Median Frame's column bins."""
        return self.root / "median_fits.fits"

    def final_fits(self, science) -> Path:
        """Stage 4: fits of one Final Frame's column bins (same file name)."""
        return self.root / "final_fits" / Path(science).name

    def final(self, science) -> Path:
        """Stage 5: infilled, cosmic-ray cleaned Final Frame (same file name)."""
        return self.root / "final" / Path(science).name

    @property
    def figures(self) -> Path:
        """Diagnostic figures."""
        return self.root / "figures"
