"""`python -m services.lag_exporter …` is `sgs lag-exporter …`: one path, one error behaviour (a bad config exits 2 with one line)."""

import sys

from sgs.cli import main

sys.exit(main(["lag-exporter", *sys.argv[1:]]))
