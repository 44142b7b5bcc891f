"""What `sgs worker` runs with: one frozen settings object built from flags, `SGS_*` variables and the federation
config, checked on load."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from sgs.cli.options import key_dir
from sgs.config import Federation, load_config, store_url
from sgs.domain.workdays import Calendar
from sgs.kafka.engines import DEFAULT as DEFAULT_ENGINE
from sgs.kafka.engines import Engine, engine_of


@dataclass(frozen=True)
class WorkerSettings:
    """Everything the worker is configured with, from flags, `SGS_*` variables and the federation config."""

    app_id: str
    bootstrap: str
    http_port: int
    data_dir: Path
    federation: Federation
    calendar: Calendar
    unknown_subject_hold_s: float
    unknown_record_hold_s: float
    sweep_interval_s: float
    aggregates_url: str
    log_level: str
    key_dir: Path  # holds `worker.key`, the worker's signing key (issue 16)
    engine: Engine = DEFAULT_ENGINE

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> WorkerSettings:
        federation = load_config(args.config)
        data_dir = Path(args.data_dir)
        return cls(
            app_id=args.app_id,
            bootstrap=args.kafka_bootstrap,
            http_port=int(args.http_port),
            data_dir=data_dir,
            federation=federation,
            calendar=Calendar.for_federation(federation, args.calendar_overrides),
            unknown_subject_hold_s=float(args.unknown_subject_hold_s),
            unknown_record_hold_s=float(args.unknown_record_hold_s),
            sweep_interval_s=float(args.sweep_interval_s),
            aggregates_url=store_url(args.aggregates_url, data_dir),
            log_level=args.log_level,
            key_dir=key_dir(args),
            engine=engine_of(args),
        )
