"""``python -m speechprobe.cli``."""

import sys

from . import main

sys.exit(main())
