"""`sgs up`: the whole federation on one machine.

Starts the engine (`--engine`: the embedded Tansu, in memory, or an Apache Kafka cluster of `--brokers` nodes whose
log stays under `--data-dir`, so a second run finds the first run's records), unless `--kafka-bootstrap`/
`SGS_KAFKA_BOOTSTRAP` names a cluster; creates the topics,
loads a simulated reference base, then runs each deployable process as a child: one district-node process serving
every node of the config (17 processes would cost ~1 GiB for nothing on one machine; a deployment runs one per
district), the municipal worker, the provincial and national sinks, the consumer-lag exporter, and a simulator
feeding records. Prints where everything is, then a line of totals every few seconds. Ctrl-C (or SIGTERM) stops the
children newest first, then the broker, and exits 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def run_federation(args: argparse.Namespace) -> int:
    from sgs.config import load_config
    from sgs.kafka.admin import prepare_cluster
    from sgs.kafka.engines import engine_of, start_engine
    from sgs.kafka.launch import BrokerError
    from sgs.kafka.offsets import records_kept
    from sgs.logs import configure_logging
    from sgs.ops.supervisor import (
        SGS,
        Child,
        StartFailed,
        child_env,
        exited,
        federation_children,
        kafka_certs,
        load_refbase,
        port_free,
        start_children,
        stop_all,
    )
    from sgs.ops.totals import Totals

    log = configure_logging("up", args.log_level)
    federation = load_config(args.config)
    data_dir = Path(args.data_dir).resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    ports = {
        "node": args.node_port,
        "worker": args.worker_port,
        "provincial": args.provincial_port,
        "national": args.national_port,
        "lag-exporter": args.lag_exporter_port,
    }
    busy = [f"{name} port {port}" for name, port in ports.items() if not port_free(port)]
    if busy:
        print(
            f"sgs up: already in use: {', '.join(busy)} (another `sgs up` running? set --*-port)",
            file=sys.stderr,
        )
        return 2

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    engine = engine_of(args)
    broker = None
    bootstrap = args.kafka_bootstrap
    certs = Path(args.kafka_certs) if args.kafka_certs else None
    if not bootstrap:
        certs = kafka_certs(certs, data_dir, federation, engine)
        try:
            broker = start_engine(
                engine, data_dir=data_dir, log_dir=logs, brokers=args.brokers, cert_dir=certs
            )
        except BrokerError as exc:
            print(f"sgs up: {exc}", file=sys.stderr)
            return 1
        bootstrap = broker.bootstrap
    prepare_cluster(bootstrap, federation)
    kept = records_kept(bootstrap, federation.partitions) if broker and engine.name == "kafka" else 0

    env = child_env(bootstrap, data_dir, federation, args.log_level, engine, certs)
    children = federation_children(ports)
    children.append(
        Child(
            "lag-exporter",
            SGS + ["lag-exporter", "--http-port", str(args.lag_exporter_port)],
            args.lag_exporter_port,
        )
    )
    if args.rate > 0:
        seed = [] if args.seed is None else ["--seed", str(args.seed)]
        feed = ["simulate", "--target", f"http://127.0.0.1:{args.node_port}", "--rate", str(args.rate), *seed]
        children.append(Child("simulator", SGS + feed))
    code = 0
    try:
        try:
            load_refbase(env, data_dir, logs)
            if not start_children(children, env, logs, stop, log):
                return 0
        except StartFailed as exc:
            print(f"sgs up: {exc}", file=sys.stderr)
            return 1

        print(
            f"\n  federation: {federation.name} — {len(federation.nodes)} nodes, "
            f"{sum(len(n.departments) for n in federation.nodes)} departments"
        )
        where = {
            "tansu": " (embedded Tansu, in memory)",
            "kafka": f" (Apache Kafka, log in {data_dir / 'kafka'})",
        }
        print(f"  broker:            {bootstrap}{where[engine.name] if broker else ''}")
        if kept:
            print(
                f"  kept from before:  {kept:,} submitted records in the cluster (its log survives a restart)"
            )
        print(f"  district nodes:    http://127.0.0.1:{args.node_port}/docs   (API)   /metrics")
        print(f"  municipal worker:  http://127.0.0.1:{args.worker_port}/metrics")
        print(
            f"  provincial sink:   http://127.0.0.1:{args.provincial_port}/   (public page)   /docs   /metrics"
        )
        print(
            f"  national sink:     http://127.0.0.1:{args.national_port}/   (public page)   /docs   /metrics"
        )
        print(f"  consumer lag:      http://127.0.0.1:{args.lag_exporter_port}/metrics")
        print(f"  logs:              {logs}/")
        print("  Ctrl-C stops everything.\n", flush=True)

        totals = Totals(ports)
        while not stop.wait(args.status_interval):
            gone = exited(children)
            if gone is not None and gone.proc is not None:
                print(
                    f"sgs up: {gone.name} exited with code {gone.proc.returncode}; "
                    f"see {logs / gone.name}.log — stopping",
                    file=sys.stderr,
                )
                code = 1
                stop.set()
            if not stop.is_set():
                print(totals.line(), flush=True)
    finally:
        stop_all(children, "sgs up")
        if broker:
            broker.stop()
    print("sgs up: stopped", flush=True)
    return code
