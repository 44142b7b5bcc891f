"""`python -m services.node …` is `sgs node …`: one path, one error behaviour (a bad config exits 2 with one line)."""

import sys

from sgs.cli import main

sys.exit(main(["node", *sys.argv[1:]]))
