"""``python -m proxy_pixel_pipeline run|status|report CONFIG``: the ``ppp`` command
(:func:`proxy_pixel_pipeline.runtime.cli.main`)."""

import sys

from .runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
