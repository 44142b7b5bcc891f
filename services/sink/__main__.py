"""`python -m services.sink`: the same as `sgs sink`."""

import argparse
import sys

from services.sink.cli import configure, run
from sgs.config import ConfigError

parser = argparse.ArgumentParser(prog="python -m services.sink", description=__doc__)
configure(parser)
args = parser.parse_args()
try:
    sys.exit(run(args))
except ConfigError as exc:
    print(f"sink: config error: {exc}", file=sys.stderr)
    sys.exit(2)
