"""Score a pipeline run against the simulator's ground truth.

:func:`score_run` compares the outputs under a config's ``output_dir`` with
the truth written by :mod:`proxy_pixel_pipeline.simulate` (``truth/``) and
returns a nested dict of metrics; :func:`format_table` renders it for a
terminal, :func:`format_summary` gives the headline numbers, and
:func:`write_score` stores it as JSON (``score.json``).  Only simulated data
can be scored: real frames have no truth.

One module per job:

* :mod:`.truth` reads the simulator's truth;
* :mod:`.inputs` reads the run's products and the baselines (master dark,
  the proxies' truth) and yields them frame by frame;
* :mod:`.background`, :mod:`.spectrum` (with the transit depth),
  :mod:`.profiles` and :mod:`.cosmic` compute one kind of metric each, and
  their docstrings define every number they report;
* :mod:`.report` writes the table and the JSON; :mod:`.run` ties them together.

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
:mod:`.spectrum`).

Sections
--------
``run`` (:mod:`.run`), ``background`` (:mod:`.background`), ``spectrum`` and
``transit`` (:mod:`.spectrum`), ``profile`` (:mod:`.profiles`), ``cosmic``
(:mod:`.cosmic`) and ``notes``.  A metric whose stage outputs are missing is
``None`` and ``notes`` says why; NaN values are written as ``null`` in JSON.
"""

from .report import format_summary, format_table, write_score
from .run import score_run

__all__ = ["score_run", "format_table", "format_summary", "write_score"]
