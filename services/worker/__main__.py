"""`python -m services.worker …` is `sgs worker …`: one path, one error behaviour (a bad config exits 2 with one line)."""

import sys

from sgs.cli import main

sys.exit(main(["worker", *sys.argv[1:]]))
