"""What `sgs node` runs with: one frozen settings object built from flags, `SGS_*` variables and the federation
config, checked on load (a bad value is a `SettingsError` naming the flag)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from services.node.fairness import FairShare
from sgs.cli.options import SettingsError, key_dir
from sgs.config import Federation, load_config


@dataclass(frozen=True)
class NodeSettings:
    """Everything `sgs node` runs with, checked on load."""

    federation: Federation
    nodes: tuple[str, ...]
    kafka_bootstrap: str
    data_dir: Path
    outbox: Path
    http_host: str
    http_port: int
    max_body_bytes: int
    max_file_bytes: int
    max_batch_records: int
    send_batch: int
    fair_share: FairShare
    log_level: str
    key_dir: Path  # holds `node.<code>.key` of each node served (issue 16)
    dev: bool  # the shipped development tokens are accepted (only `sgs up` and tests)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> NodeSettings:
        federation = load_config(args.config)
        data_dir = Path(args.data_dir)
        flags = ("max_body_bytes", "max_file_bytes", "max_batch_records", "send_batch")
        for flag in (*flags, "department_rate", "department_burst", "department_uploads"):
            if float(getattr(args, flag)) < 1:
                raise SettingsError(
                    f"--{flag.replace('_', '-')}: must be at least 1, got {getattr(args, flag)}"
                )
        nodes = resolve_nodes(federation, args.district)
        unhashed = [
            d.id for n in federation.nodes if n.code in nodes for d in n.departments if d.token_hash is None
        ]
        if unhashed and not args.dev:
            raise SettingsError(
                f"{federation.path}: {len(unhashed)} department(s) without a token_hash (e.g. {unhashed[0]}): "
                "give each one with `sgs tokens new DEPT`, or run with --dev to accept the development tokens"
            )
        return cls(
            federation=federation,
            nodes=nodes,
            kafka_bootstrap=args.kafka_bootstrap,
            data_dir=data_dir,
            outbox=Path(args.outbox) if args.outbox else data_dir / "outbox.db",
            http_host=args.http_host,
            http_port=int(args.http_port),
            max_body_bytes=int(args.max_body_bytes),
            max_file_bytes=int(args.max_file_bytes),
            max_batch_records=int(args.max_batch_records),
            send_batch=int(args.send_batch),
            fair_share=FairShare(
                float(args.department_rate), int(args.department_burst), int(args.department_uploads)
            ),
            log_level=args.log_level,
            key_dir=key_dir(args),
            dev=bool(args.dev),
        )


def resolve_nodes(federation: Federation, values: list[str] | str | None) -> tuple[str, ...]:
    """`--district` values (repeated and/or comma-separated; `all`) -> the division codes to serve, in order."""
    if isinstance(values, str):  # from SGS_DISTRICT
        values = [values]
    codes = [c.strip() for v in values or [] for c in v.split(",") if c.strip()]
    if not codes:
        raise SettingsError("--district: give at least one division code, or `all` [env SGS_DISTRICT]")
    if "all" in codes:
        return tuple(n.code for n in federation.nodes)
    known = {n.code for n in federation.nodes}
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise SettingsError(
            f"--district: {', '.join(unknown)} not in {federation.path}; known: {', '.join(sorted(known))}"
        )
    return tuple(dict.fromkeys(codes))
