"""The profile fits product (stages 3 and 4): the result container :class:`ProfileFits`.

One entry per column bin: the seven parameters of the double Gaussian (in
the order of :data:`PARAM_NAMES`), their uncertainties, the peak ratio, the
reduced chi-square, the number of samples and :class:`FitFlag` bits; with
its conversion to and from an `~astropy.table.Table` (the FITS product).
Holds no fitting code and imports only numpy, astropy.table and the
package's flags.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.table import Table

from ..flags import FitFlag, flagdoc

__all__ = ["PARAM_NAMES", "ProfileFits"]

PARAM_NAMES = ("amp1", "mu1", "sigma1", "amp2", "mu2", "sigma2", "offset")

# Unit of each fitted quantity in the FITS table (None: dimensionless).
_UNITS = {"amp1": "adu", "amp2": "adu", "offset": "adu",
          "mu1": "pix", "mu2": "pix", "sigma1": "pix", "sigma2": "pix",
          "column_lo": "pix", "column_hi": "pix"}


@dataclasses.dataclass
class ProfileFits:
    """Per-bin results of the column-profile fits (one array entry per bin).

    Attributes
    ----------
    column_lo, column_hi : ndarray of int
        First and one-past-last column of each bin (``-1`` if unknown).
    amp1, mu1, sigma1, amp2, mu2, sigma2, offset : ndarray of float
        Parameters of :func:`double_gaussian` (ADU, pixels); peak 1 is at the
        lower row.
    amp1_err, ..., offset_err : ndarray of float
        1-sigma uncertainties from the fit covariance (NaN if undetermined).
    ratio : ndarray of float
        Peak ratio ``amp1/amp2`` (NaN for single-Gaussian bins).
    chi2_red : ndarray of float
        Reduced chi-square ``sum(r**2/sigma**2)/(n - p)`` when per-pixel
        uncertainties were given; otherwise ``sum(r**2)/(n - p)``, the
        residual variance in ADU**2 that scales the covariance.
    n_points : ndarray of int
        Number of finite samples used.
    flag : ndarray of int
        :class:`FitFlag` bits.
    """

    column_lo: np.ndarray
    column_hi: np.ndarray
    amp1: np.ndarray
    mu1: np.ndarray
    sigma1: np.ndarray
    amp2: np.ndarray
    mu2: np.ndarray
    sigma2: np.ndarray
    offset: np.ndarray
    amp1_err: np.ndarray
    mu1_err: np.ndarray
    sigma1_err: np.ndarray
    amp2_err: np.ndarray
    mu2_err: np.ndarray
    sigma2_err: np.ndarray
    offset_err: np.ndarray
    ratio: np.ndarray
    chi2_red: np.ndarray
    n_points: np.ndarray
    flag: np.ndarray

    @classmethod
    def empty(cls, n_bins, edges=None):
        """All-NaN results flagged FAILED for ``n_bins`` bins.

        Parameters
        ----------
        n_bins : int
            Number of column bins.
        edges : array_like of int, optional
            ``n_bins + 1`` column edges (see :func:`bin_edges`); unknown
            column ranges (``-1``) if omitted.

        Returns
        -------
        ProfileFits
        """
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in ("column_lo", "column_hi"):
                values[f.name] = np.full(n_bins, -1, dtype=np.int64)
            elif f.name == "n_points":
                values[f.name] = np.zeros(n_bins, dtype=np.int64)
            elif f.name == "flag":
                values[f.name] = np.full(n_bins, int(FitFlag.FAILED), dtype=np.int16)
            else:
                values[f.name] = np.full(n_bins, np.nan)
        if edges is not None:
            edges = np.asarray(edges, dtype=np.int64)
            if edges.shape != (n_bins + 1,):
                raise ValueError(f"edges must have {n_bins + 1} entries for {n_bins} bins, "
                                 f"got shape {edges.shape}")
            values["column_lo"] = edges[:-1].copy()
            values["column_hi"] = edges[1:].copy()
        return cls(**values)

    def __len__(self):
        return len(self.flag)

    @property
    def params(self):
        """ndarray (n_bins, 7): the parameters in ``PARAM_NAMES`` order."""
        return np.column_stack([getattr(self, n) for n in PARAM_NAMES])

    @property
    def errors(self):
        """ndarray (n_bins, 7): the uncertainties in ``PARAM_NAMES`` order."""
        return np.column_stack([getattr(self, n + "_err") for n in PARAM_NAMES])

    def set_bin(self, i, params, errors, ratio, chi2_red, n_points, flag):
        """Store the results of bin ``i`` (in place).

        Parameters
        ----------
        i : int
            Bin index.
        params, errors : sequence of 7 float
            Parameters and their 1-sigma uncertainties in ``PARAM_NAMES``
            order (ADU, pixels).
        ratio : float
            Peak ratio ``amp1/amp2`` (NaN for a single Gaussian).
        chi2_red : float
            Reduced chi-square (see the class docstring).
        n_points : int
            Number of finite samples used.
        flag : int or FitFlag
            :class:`FitFlag` bits.
        """
        for name, v, e in zip(PARAM_NAMES, params, errors):
            getattr(self, name)[i] = v
            getattr(self, name + "_err")[i] = e
        self.ratio[i] = ratio
        self.chi2_red[i] = chi2_red
        self.n_points[i] = n_points
        self.flag[i] = int(flag)

    def to_table(self):
        """Convert to an `~astropy.table.Table` (upper-case column names).

        Returns
        -------
        astropy.table.Table
            Columns COLUMN_LO, COLUMN_HI, AMP1, AMP1_ERR, ..., RATIO,
            CHI2_RED, N_POINTS, FLAG, with units 'adu' / 'pix' where they
            apply; ready for ``table.write(path, format='fits')``.
        """
        t = Table()
        for f in dataclasses.fields(self):
            base = f.name[:-4] if f.name.endswith("_err") else f.name
            t[f.name.upper()] = getattr(self, f.name)
            if base in _UNITS:
                t[f.name.upper()].unit = _UNITS[base]
        # FITS COMMENT cards (kept under 72 characters so they do not wrap).
        t.meta["comments"] = [
            "Column-profile fits, one row per column bin [COLUMN_LO, COLUMN_HI).",
            "Model: AMP1*G(MU1,SIGMA1) + AMP2*G(MU2,SIGMA2) + OFFSET,",
            "  G(mu,sigma) = exp(-(y-mu)^2/(2 sigma^2)); RATIO = AMP1/AMP2.",
            f"FLAG bits: {flagdoc(FitFlag)}.",
        ]
        return t

    @classmethod
    def from_table(cls, table):
        """Build from a table written by :meth:`to_table` (e.g. read from FITS).

        Parameters
        ----------
        table : astropy.table.Table or QTable
            Must have every column of :meth:`to_table` (case-insensitive);
            units are dropped.

        Returns
        -------
        ProfileFits
        """
        names = {n.upper(): n for n in table.colnames}
        values = {}
        for f in dataclasses.fields(cls):
            key = f.name.upper()
            if key not in names:
                raise ValueError(f"profile-fit table has no column {key}")
            col = np.asarray(getattr(table[names[key]], "value", table[names[key]]))
            if f.name in ("column_lo", "column_hi", "n_points"):
                col = col.astype(np.int64)
            elif f.name == "flag":
                col = col.astype(np.int16)
            else:
                col = col.astype(float)
            values[f.name] = col.copy()
        return cls(**values)
