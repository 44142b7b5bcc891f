"""`sgs`: one console script, one subcommand per deployable process or tool.

Each subcommand lives with the code it runs, in a small `cli.py`-style module that only builds its parser and
imports the heavy code (faust, FastAPI, ...) when run, so `sgs --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sgs.config import ConfigError
from sgs.settings import SettingsError

# Order is the order `sgs --help` lists them in.
COMMAND_MODULES = (
    "sgs.up",
    "sgs.broker_cli",
    "services.node.cli",
    "services.sink.cli",
    "services.worker.cli",
    "simulators.cli",
    "simulators.bench_cli",
    "sgs.chaos_cli",
    "sgs.calendar_cli",
    "sgs.validate_cli",
    "sgs.refbase_cli",
    "sgs.lag_cli",
    "sgs.report_cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sgs",
        description="双公示 federation: district nodes, municipal processors, provincial and national sinks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"sgs {args.command}: config error: {exc}", file=sys.stderr)
        return 2
    except SettingsError as exc:
        print(f"sgs {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
