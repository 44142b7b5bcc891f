"""`sgs`: one console script, one subcommand per deployable process or tool.

Read `options` first: every flag `--some-name` also reads `SGS_SOME_NAME`. Then `main` below. A deployable process
owns its command module (`services/<service>/cli.py`, `simulators/cli.py`, `simulators/bench/cli.py`); the shared
commands are the other modules here, one each (`broker`, `cluster`, `calendar`, `validate`, `refbase`, `report`, `chaos`,
`up`, `keys`, `tokens`). A command module only builds its parser and imports the heavy code (faust, FastAPI, ...) when run, so
`sgs --help` stays fast. `python -m services.X` is `main(["X", ...])`: one path, one error behaviour.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from sgs.cli.options import SettingsError
from sgs.config import ConfigError
from sgs.kafka import security

# Order is the order `sgs --help` lists them in.
COMMAND_MODULES = (
    "sgs.cli.up",
    "sgs.cli.broker",
    "sgs.cli.cluster",
    "services.node.cli",
    "services.sink.cli",
    "services.worker.cli",
    "simulators.cli",
    "simulators.bench.cli",
    "sgs.cli.chaos",
    "sgs.cli.calendar",
    "sgs.cli.rules",
    "sgs.cli.validate",
    "sgs.cli.refbase",
    "services.lag_exporter.cli",
    "sgs.cli.report",
    "sgs.cli.keys",
    "sgs.cli.tokens",
)


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="sgs",
        description="双公示 federation: district nodes, municipal processors, provincial and national sinks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_parser(sub)
    return parser, dict(sub.choices)


def build_parser() -> argparse.ArgumentParser:
    return _parsers()[0]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser by name (for `--help` listings and the deployment's checks)."""
    return _parsers()[1]


def use_kafka_identity(args: argparse.Namespace) -> None:
    """The process's Kafka principal: what its command names (`kafka_principal`, a name or a function of the
    arguments), with the certificate `--kafka-certs` points at (issue 16)."""
    certs = getattr(args, "kafka_certs", None)
    if not certs:
        return
    principal = getattr(args, "kafka_principal", security.ADMIN)
    name = principal(args) if callable(principal) else principal
    security.use(security.Identity(name, Path(certs)))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        use_kafka_identity(args)
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"sgs {args.command}: config error: {exc}", file=sys.stderr)
        return 2
    except (SettingsError, security.CredentialsError) as exc:
        print(f"sgs {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
