"""What `sgs lag-exporter` runs with: one frozen settings object from flags and `SGS_*` variables; the federation
config is checked on load like every service's."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from sgs.config import Federation, load_config


@dataclass(frozen=True)
class LagExporterSettings:
    federation: Federation
    kafka_bootstrap: str
    http_port: int
    group_prefix: str
    log_level: str

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> LagExporterSettings:
        return cls(
            federation=load_config(args.config),
            kafka_bootstrap=args.kafka_bootstrap,
            http_port=int(args.http_port),
            group_prefix=args.group_prefix,
            log_level=args.log_level,
        )
