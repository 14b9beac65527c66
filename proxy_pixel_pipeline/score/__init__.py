"""Score a pipeline run against the simulator's ground truth.

:func:`score_run` compares the outputs under a config's ``output_dir`` with
the truth written by :mod:`proxy_pixel_pipeline.simulate` (``truth/``) and
returns a nested dict of metrics; :func:`format_table` renders it for a
terminal, :func:`format_summary` gives the headline numbers, and
:func:`write_score` stores it as JSON (``score.json``).  Only simulated data
can be scored: real frames have no truth.

The code, one module per job:

* :mod:`.truth` reads the simulator's truth;
* :mod:`.inputs` reads the run's products and the baselines (master dark,
  the proxies' truth) and yields them frame by frame;
* every other module but :mod:`.stats` (shared statistics) computes one kind
  of metric, defines in its docstring every number it reports, and declares
  itself with a :class:`~.metric.Metric`: the score's keys it fills, the
  outputs it scores, how it computes them (frame by frame, or at the end)
  and how it prints into the table and the summary;
* :mod:`.metric` finds the metrics (:func:`~.metric.metrics`), :mod:`.report`
  writes the table and the JSON and :mod:`.run` ties them together.

Adding a metric is adding its module, and nothing else (see :mod:`.metric`).

Notation
--------
For science frame *f* and pixel *p*: ``S`` is the raw science frame (ADU, NaN
where missing), ``SIG`` the true expected spectral signal (truth ``SIGNAL``,
ADU, scaled by the frame's ``FLUX_SCALE``), ``BG`` the true expected
background (truth ``BACKGROUND`` = bias + dark current, ADU), ``CR`` the true
cosmic-ray charge (truth ``COSMIC``, ADU), ``F2`` the stage-2 Final Frame
(``final_no_infill/``), ``F5`` the stage-5 frame (``final/``).  The *trace*
is the spectral mask of the config (``spectral_mask``).  The *master dark*
``MD`` is the per-pixel median of the raw dark frames (missing samples
skipped).  Pixels marked ``MISSING`` in the truth are left out of every
pixel-level metric (the binned sums include them, filled as stated in
:mod:`.binned_spectrum`).

Sections
--------
``run`` (:mod:`.run`: what was scored), then the sections of every metric,
ordered by the earliest stage whose products they score (then by module
name), then ``notes``.  A metric whose stage outputs are missing is ``None``
(or holds ``None``) and ``notes`` says why; NaN values are written as
``null`` in JSON.
"""

from .report import format_summary, format_table, write_score
from .run import score_run

__all__ = ["score_run", "format_table", "format_summary", "write_score"]
