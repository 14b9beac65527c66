#!/usr/bin/env python
"""The lowest background residual any estimator can reach on a simulated data set.

Why this exists: the K-proxies target (issue 7) asks for a stage-2 residual
within 1.12x the oracle on science frames warmer than every dark.  Whether
that is reachable depends on how much the darks say about each pixel's own
temperature law, and that can be computed from the simulator's truth.

In the simulator (``proxy_pixel_pipeline.simulate``) pixel *i* collects
``mu_i(T) = exp(a_i + ln2 (T - T_ref) u_i) t`` electrons of dark charge, with
``a_i = ln D0_i`` and ``u_i = 1 / d_i`` (inverse doubling temperature), each
pixel independent of the others.  An estimator of pixel *i*'s background in a
science frame can learn ``a_i`` and ``u_i`` only from pixel *i*'s own darks;
the other pixels tell it the population of ``u`` (a prior) and, through
proxies, the frame's temperature.  Give it everything else for free: the exact
CCD temperature of every frame, the exact form of the law, the population
mean and spread of ``u``.  Its best (Bayes, linearised) background then errs by

    var_i = h^T (J_i + P)^-1 h,   h = mu_i(T_s) (1, ln2 (T_s - T_ref))

where ``J_i = sum_darks g g^T / (mu_i(T_t) + read_noise^2)``,
``g = mu_i(T_t) (1, ln2 (T_t - T_ref))`` is the Fisher information of the
darks (Poisson + read noise) and ``P = diag(0, 1 / var(u))`` the prior.  The
floor is the RMS of ``oracle residual`` with that variance added, over the
same in-trace pixels the score uses (no cosmic ray, not missing, not hot),
divided by the oracle's RMS.  A proxy method pays in addition its K proxies'
own noise in the science frame (variance / K), reported as the K-proxy floor.

    python bench/extrapolation_floor.py SIMULATED_FOLDER [--ks 1 4 16 32]

Prints the floor and the K-proxy floors; :func:`floor` returns them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from astropy.io import fits

_LN2 = np.log(2.0)


def floor(folder, ks=(1, 4, 16, 32)):
    """Information floor of the background residual on a simulated data set.

    Parameters
    ----------
    folder : str or Path
        Folder written by ``simulate.py`` (``truth/``, ``science/``,
        ``spectral_mask.fits``).
    ks : sequence of int
        Proxy counts for which the K-proxy floor is reported.

    Returns
    -------
    dict
        ``floor``: RMS / oracle of the Bayes estimator described in the module
        docstring; ``known_level``: RMS / oracle of the simpler estimator that
        knows each pixel's exact level and the population-mean doubling
        temperature (no per-pixel temperature law); ``dark_fit``: RMS / oracle
        of a real estimator that fits each pixel's level to its own darks
        (least squares, cosmic-ray samples dropped) and extrapolates with the
        population-mean doubling temperature, a check that the floor is
        reachable in practice and not too low; ``k_floor``: {K: floor with the
        K proxies' own noise added}; ``pixels``: pixel-frames used.
    """
    folder = Path(folder)
    truth = folder / "truth"
    with fits.open(truth / "truth.fits") as hdul:
        head = hdul[0].header
        gain, read_noise, bias, t_ref = (float(head[k]) for k in ("GAIN", "RDNOISE", "BIAS", "TREF"))
        level = hdul["DARK_LEVEL"].data.astype(np.float64)          # e-/s at T_ref
        u_true = 1.0 / hdul["DARK_DOUBLING"].data.astype(np.float64)
        hot = hdul["HOT"].data != 0
        frames = hdul["FRAMES"].data
        kind = np.char.strip(np.asarray(frames["KIND"], str))
        names = np.char.strip(np.asarray(frames["NAME"], str))
        temp = np.asarray(frames["CCDTEMP"], np.float64)
        exptime = np.asarray(frames["EXPTIME"], np.float64)
    pixels = (fits.getdata(folder / "spectral_mask.fits") != 0) & ~hot
    a, u = np.log(level[pixels]), u_true[pixels]

    # Fisher information of each pixel's darks about (a, u), plus the prior on u.
    dark = kind == "dark"
    x_dark = _LN2 * (temp[dark] - t_ref)
    mu = np.exp(a[:, None] + x_dark[None, :] * u[:, None]) * exptime[dark]
    w = mu**2 / (mu + read_noise**2)
    j11, j12 = w.sum(1), (w * x_dark).sum(1)
    j22 = (w * x_dark**2).sum(1) + 1.0 / u.var()
    det = j11 * j22 - j12**2
    c11, c12, c22 = j22 / det, -j12 / det, j11 / det

    # The real estimator: each pixel's level fitted to its clean darks, mean doubling law.
    num = den = 0.0
    for name, t_dark, t_exp in zip(names[dark], temp[dark], exptime[dark]):
        with fits.open(truth / name) as hdul:
            clean = (hdul["COSMIC"].data[pixels] == 0) & (hdul["MISSING"].data[pixels] == 0)
        value = fits.getdata(folder / "darks" / name).astype(np.float64)[pixels]
        clean &= np.isfinite(value)
        shape = np.exp(_LN2 * (t_dark - t_ref) * u.mean()) * t_exp
        num = num + np.where(clean, (value - bias) * gain * shape, 0.0)
        den = den + np.where(clean, shape**2, 0.0)
    level_fit = num / den                                  # e-/s at T_ref

    sums = {"oracle": 0.0, "floor": 0.0, "known_level": 0.0, "dark_fit": 0.0} | {k: 0.0 for k in ks}
    count = 0
    for name, t_sci, t_exp in zip(names[kind == "science"], temp[kind == "science"],
                                  exptime[kind == "science"]):
        with fits.open(truth / name) as hdul:
            bg, sig, cr = (hdul[e].data.astype(np.float64)[pixels]
                           for e in ("BACKGROUND", "SIGNAL", "COSMIC"))
            missing = hdul["MISSING"].data[pixels] != 0
        sci = fits.getdata(folder / "science" / name).astype(np.float64)[pixels]
        ok = (cr == 0) & ~missing & np.isfinite(sci)
        oracle = (sci - bg - sig)[ok]
        x = _LN2 * (t_sci - t_ref)
        mu_s = (np.exp(a + x * u) * t_exp)[ok]
        var_e = mu_s**2 * (c11 + 2 * c12 * x + c22 * x**2)[ok]
        known = bias + np.exp(a + x * u.mean())[ok] * t_exp / gain
        fitted = bias + level_fit[ok] * np.exp(x * u.mean()) * t_exp / gain
        sums["oracle"] += np.sum(oracle**2)
        sums["floor"] += np.sum(oracle**2) + np.sum(var_e) / gain**2
        sums["known_level"] += np.sum((sci[ok] - known - sig[ok]) ** 2)
        sums["dark_fit"] += np.sum((sci[ok] - fitted - sig[ok]) ** 2)
        for k in ks:   # each proxy's own noise in the science frame: ~ the pixel's dark + read noise
            sums[k] += np.sum(oracle**2) + np.sum(var_e + (mu_s + read_noise**2) / k) / gain**2
        count += int(ok.sum())
    ratio = {key: float(np.sqrt(value / sums["oracle"])) for key, value in sums.items()}
    return {"floor": ratio["floor"], "known_level": ratio["known_level"],
            "dark_fit": ratio["dark_fit"], "k_floor": {k: ratio[k] for k in ks}, "pixels": count}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a folder written by simulate.py")
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 4, 16, 32])
    args = parser.parse_args(argv)
    result = floor(args.folder, args.ks)
    print(f"{args.folder}: {result['pixels']} in-trace pixel-frames without cosmic rays")
    print(f"  information floor, RMS / oracle:          {result['floor']:.3f}")
    print(f"  known level + mean doubling temperature:  {result['known_level']:.3f}")
    print(f"  level fitted to the darks + mean doubling: {result['dark_fit']:.3f}")
    for k, value in result["k_floor"].items():
        print(f"  floor with K = {k:2d} proxies' own noise:   {value:.3f}")


if __name__ == "__main__":
    sys.exit(main())
