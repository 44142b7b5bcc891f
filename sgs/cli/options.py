"""Command-line settings: every flag `--some-name` also reads `SGS_SOME_NAME` from the environment.

One rule for every service, so `docker-compose.yml` and `sgs up` configure processes the same way a person does
on the command line. A flag given on the command line wins over the environment, which wins over the default.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from sgs.kafka.engines import DEFAULT as DEFAULT_ENGINE
from sgs.kafka.engines import ENGINES


class SettingsError(Exception):
    """A flag or variable that cannot be used; the message names it. `sgs` prints it on one line and exits 2."""


def env_name(flag: str) -> str:
    """`--kafka-bootstrap` -> `SGS_KAFKA_BOOTSTRAP`."""
    return "SGS_" + flag.lstrip("-").upper().replace("-", "_")


def add_option(parser: argparse.ArgumentParser, flag: str, *, help: str, **kwargs: Any) -> None:
    """Add `flag`, defaulting to its `SGS_*` variable, else to `default`."""
    env = env_name(flag)
    if kwargs.get("action") == "store_true":
        kwargs["default"] = os.environ.get(env, "").lower() in ("1", "true", "yes", "on")
    elif env in os.environ:
        kwargs["default"] = os.environ[env]
    parser.add_argument(flag, help=f"{help} [env {env}; default: %(default)s]", **kwargs)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every process of the federation takes."""
    add_engine_option(parser)
    add_option(parser, "--config", default=None, help="federation config file (TOML)")
    add_option(
        parser, "--kafka-bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers, host:port[,...]"
    )
    add_option(
        parser, "--data-dir", default="var", help="directory for local state (SQLite stores, outboxes, logs)"
    )
    add_option(
        parser,
        "--key-dir",
        default=None,
        help="directory of this process's private signing keys, <signer>.key (default: {data_dir}/keys)",
    )
    add_kafka_certs_option(parser)
    add_option(
        parser, "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level"
    )


def add_kafka_certs_option(parser: argparse.ArgumentParser) -> None:
    """Where this process's Kafka certificate is (issue 16): unset, its links are plaintext."""
    add_option(
        parser,
        "--kafka-certs",
        default=None,
        help="directory of the federation CA (ca.pem) and this process's Kafka certificate and key "
        "(<principal>.pem, <principal>.key; `sgs keys tls` makes them): links are mutual TLS as that principal "
        "(--engine kafka); unset: plaintext",
    )


def key_dir(args: argparse.Namespace) -> Path:
    """Where the process's private signing keys are (`--key-dir`, else `<data dir>/keys`)."""
    return Path(args.key_dir) if args.key_dir else Path(args.data_dir) / "keys"


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """The one setting that picks the engine (sgs/kafka/engines.py says what follows from it)."""
    add_option(
        parser,
        "--engine",
        default=DEFAULT_ENGINE.name,
        choices=ENGINES,
        help="Kafka engine: tansu (embedded, in memory, at-least-once with dedup) or kafka (Apache Kafka, "
        "KRaft, exactly-once)",
    )


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """What a command that starts its own engine takes besides `--engine`."""
    add_option(
        parser,
        "--brokers",
        type=int,
        default=1,
        choices=[1, 3],
        help="nodes of the Apache Kafka cluster started (--engine kafka); Tansu is always one",
    )


def add_calendar_overrides_option(parser: argparse.ArgumentParser) -> None:
    """The one flag every process that counts working days takes (`sgs calendar`, the worker)."""
    add_option(
        parser,
        "--calendar-overrides",
        default=None,
        help="TOML file of official holidays / make-up workdays (docs/calendar.md); "
        "default: the federation config's timeliness.calendar_overrides",
    )
