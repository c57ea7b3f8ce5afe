"""`python -m monitor.cli`: the command line."""

import sys

from monitor.cli.main import main

sys.exit(main())
