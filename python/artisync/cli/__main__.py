"""``python -m artisync.cli``: the ``artisync`` command."""

import sys

from artisync.cli import main

sys.exit(main())
