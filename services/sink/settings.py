"""What `sgs sink` runs with: one frozen settings object built from flags, `SGS_*` variables and the federation
config, checked on load (a bad value is a `SettingsError` naming the flag)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from sgs.cli.options import SettingsError, key_dir
from sgs.config import TIERS, Federation, load_config, store_url
from sgs.kafka.engines import Engine, engine_of
from sgs.kafka.topics import RELAY

DEFAULT_PORTS = {"provincial": 8201, "national": 8202}


def parse_operator_tokens(spec: str | None) -> dict[str, str]:
    """`name=secret[,name=secret...]`, or one bare secret (operator "operator"). Returns secret -> operator."""
    tokens: dict[str, str] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, _, secret = part.partition("=") if "=" in part else ("operator", "", part)
        if len(secret) < 8:
            raise SettingsError("--operator-token: an operator token needs at least 8 characters")
        tokens[secret] = name
    return tokens


@dataclass(frozen=True)
class SinkSettings:
    """Everything one tier's sink runs with."""

    tier: str
    federation: Federation
    kafka_bootstrap: str
    data_dir: Path
    store_url: str
    http_host: str
    http_port: int
    operator_tokens: dict[str, str]
    group_id: str
    relay_topic: str
    log_level: str
    key_dir: Path  # holds `sink.<tier>.key`, the sink's signing key (issue 16)
    engine: Engine

    @property
    def name(self) -> str:
        """The sink's name in the federation config (shown on its page)."""
        return self.federation.sinks[self.tier].name

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SinkSettings:
        if args.tier not in TIERS:
            raise SettingsError(f"--tier (or SGS_TIER) is required: {' or '.join(TIERS)}")
        federation = load_config(args.config)
        tier = args.tier
        return cls(
            tier=tier,
            federation=federation,
            kafka_bootstrap=args.kafka_bootstrap,
            data_dir=Path(args.data_dir),
            store_url=args.store_url or store_url(federation.sinks[tier].store_url, args.data_dir),
            http_host=args.http_host,
            http_port=int(args.http_port or DEFAULT_PORTS[tier]),
            operator_tokens=parse_operator_tokens(args.operator_token),
            group_id=args.group_id or f"sgs-sink-{tier}",
            relay_topic=args.relay_topic or RELAY[tier],
            log_level=args.log_level,
            key_dir=key_dir(args),
            engine=engine_of(args),
        )
