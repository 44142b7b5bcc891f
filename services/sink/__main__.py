"""`python -m services.sink …` is `sgs sink …`: one path, one error behaviour (a bad config exits 2 with one line)."""

import sys

from sgs.cli import main

sys.exit(main(["sink", *sys.argv[1:]]))
