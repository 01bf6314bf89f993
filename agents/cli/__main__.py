"""`python -m agents.cli`: the `slamon` command without the console script."""

import sys

from agents.cli import main

sys.exit(main())
