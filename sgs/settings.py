"""Command-line settings: every flag `--some-name` also reads `SGS_SOME_NAME` from the environment.

One rule for every service, so `docker-compose.yml` and `sgs up` configure processes the same way a person does
on the command line. A flag given on the command line wins over the environment, which wins over the default.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


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
    from sgs.kafka.engines import add_engine_option

    add_engine_option(parser)
    add_option(parser, "--config", default=None, help="federation config file (TOML)")
    add_option(
        parser, "--kafka-bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers, host:port[,...]"
    )
    add_option(
        parser, "--data-dir", default="var", help="directory for local state (SQLite stores, outboxes, logs)"
    )
    add_option(
        parser, "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level"
    )
