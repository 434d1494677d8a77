"""``python -m engine.cli``: what the tests and the demo start as a separate process."""

import sys

from .main import main

sys.exit(main())
