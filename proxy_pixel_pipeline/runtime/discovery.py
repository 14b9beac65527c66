"""What the modules of a package declare: adding a figure or a score metric is adding a file.

:func:`declared` imports every module of a package (the figures of
:mod:`proxy_pixel_pipeline.plots`, the metrics of :mod:`proxy_pixel_pipeline.score`)
and returns the module-level values a predicate accepts, e.g. the functions
carrying a :class:`~proxy_pixel_pipeline.plots.inputs.FigureSpec`.  Nothing is
registered: the modules are imported by Python's import system (once) and
their attributes read again at every call, so there is no list to keep up to
date and no module state filled in at run time.
"""

from __future__ import annotations

import importlib
import pkgutil

__all__ = ["declared"]


def declared(package, accept, skip=()) -> list:
    """The module-level values of a package's modules that ``accept`` accepts.

    Parameters
    ----------
    package : str
        Dotted name of the package, e.g. ``"proxy_pixel_pipeline.plots"``.
    accept : callable
        ``accept(module, value) -> bool``, called for every attribute of
        every module (``module`` is the module object).
    skip : iterable of str
        Names of modules (the last part of the dotted name) not to import:
        the package's helpers, which declare nothing.  Modules whose name
        starts with ``_`` are skipped too.

    Returns
    -------
    list of (str, object)
        ``(module name, value)`` in the order of the module names, then of
        the values' first binding in the module (its definition order); a
        value found in two modules (imported by the second) is kept once,
        with the first.
    """
    path = importlib.import_module(package).__path__
    skip = set(skip)
    found, seen = [], set()
    for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name):
        if info.name in skip or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for value in vars(module).values():
            if id(value) not in seen and accept(module, value):
                seen.add(id(value))
                found.append((info.name, value))
    return found
