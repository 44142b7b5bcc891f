"""`python -m services.node ...` is `sgs node ...`."""

import sys

from sgs.cli import main

sys.exit(main(["node", *sys.argv[1:]]))
