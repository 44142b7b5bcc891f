"""`sgs refbase`: load the legal-person base (法人库) and the population base (人口库) from CSV, and publish them as
change streams to the workers (D13). Headers and exit codes: docs/refbase.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sgs.cli.options import add_common_options, add_option
from sgs.kafka import security

BATCH = 1000


if TYPE_CHECKING:
    from sgs.config import Federation


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "refbase", help="load / publish the legal-person base (法人库) and population base (人口库)"
    )
    rsub = p.add_subparsers(dest="refbase_command", required=True, metavar="ACTION")

    def common(cp: argparse.ArgumentParser) -> None:
        add_common_options(cp)
        add_option(
            cp,
            "--refbase-url",
            default=None,
            help="SQLAlchemy URL of the bases (default: the config's stores.refbase_url)",
        )

    load = rsub.add_parser("load", help="upsert a base from CSV and publish every changed row")
    load.add_argument("base", choices=["legal-persons", "persons"], help="which base the file holds")
    load.add_argument("file", type=Path, help="CSV file (UTF-8; headers in docs/refbase.md)")
    add_option(load, "--csv-encoding", default="utf-8-sig", help="encoding of the CSV file (e.g. gb18030)")
    add_option(
        load, "--progress", action="store_true", help="force the progress bar even when stderr is not a tty"
    )
    common(load)
    load.set_defaults(run=run_load, kafka_principal=security.REFBASE)

    pub = rsub.add_parser("publish", help="republish a whole base (e.g. to a fresh broker)")
    pub.add_argument("base", nargs="?", choices=["legal-persons", "persons", "all"], default="all")
    add_option(
        pub, "--progress", action="store_true", help="force the progress bar even when stderr is not a tty"
    )
    common(pub)
    pub.set_defaults(run=run_publish, kafka_principal=security.REFBASE)


def _open(args: argparse.Namespace, federation: Federation):  # type: ignore[no-untyped-def]
    from sgs.config import store_url
    from sgs.refbase.store import RefBase

    url = args.refbase_url or store_url(federation.refbase_url, args.data_dir)
    return RefBase(url)


def _bar(args: argparse.Namespace, unit: str):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(unit=unit, file=sys.stderr, disable=None if not args.progress else False, mininterval=0.5)


def run_load(args: argparse.Namespace) -> int:
    """Exit 0: every row loaded; 1: some rows were invalid (the rest loaded, each bad row reported); 2: the file,
    the store or the broker could not be used (nothing of the failed batch stored)."""
    from kafka.errors import KafkaError

    from sgs.config import load_config
    from sgs.kafka.admin import ensure_federation_topics
    from sgs.logs import configure_logging
    from sgs.refbase.load import read_csv
    from sgs.refbase.publisher import ChangePublisher
    from sgs.refbase.store import BASES, LoadCounts, RefbaseError

    federation = load_config(args.config)  # checked before anything connects: a bad config is one line
    log = configure_logging("refbase", args.log_level)
    spec = BASES[args.base]
    total = LoadCounts()
    try:
        with (
            ChangePublisher(args.kafka_bootstrap) as publish,
            _open(args, federation) as base,
            _bar(args, "row") as bar,
        ):
            ensure_federation_topics(args.kafka_bootstrap, federation)
            batch: list[dict] = []

            def flush() -> None:
                counts = base.upsert(spec, batch, publish)
                total.inserted += counts.inserted
                total.updated += counts.updated
                total.unchanged += counts.unchanged
                total.published += counts.published
                bar.update(len(batch))
                bar.set_postfix(changed=total.changed, invalid=total.invalid)
                batch.clear()

            for item in read_csv(spec, args.file, args.csv_encoding):
                if item.row is None:
                    total.invalid += 1
                    print(f"{args.file}:{item.line}: {'; '.join(item.reasons)}", file=sys.stderr)
                    continue
                batch.append(item.row)
                if len(batch) >= BATCH:
                    flush()
            if batch:
                flush()
    except RefbaseError as exc:
        print(f"sgs refbase load: {exc}", file=sys.stderr)
        log.error("refbase.load_failed", base=spec.name, error=str(exc), loaded=total.changed)
        return 2
    except KafkaError as exc:  # the admin client creating the topics
        print(f"sgs refbase load: broker {args.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 2
    log.info(
        "refbase.loaded",
        base=spec.name,
        inserted=total.inserted,
        updated=total.updated,
        unchanged=total.unchanged,
        invalid=total.invalid,
        published=total.published,
    )
    print(
        f"{spec.name}: {total.inserted} inserted, {total.updated} updated, {total.unchanged} unchanged, "
        f"{total.invalid} invalid, {total.published} published to {spec.topic}"
    )
    return 1 if total.invalid else 0


def run_publish(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from sgs.config import load_config
    from sgs.kafka.admin import ensure_federation_topics
    from sgs.logs import configure_logging
    from sgs.refbase.publisher import ChangePublisher
    from sgs.refbase.store import BASES, RefbaseError

    federation = load_config(args.config)  # checked before anything connects: a bad config is one line
    log = configure_logging("refbase", args.log_level)
    specs = list(BASES.values()) if args.base == "all" else [BASES[args.base]]
    try:
        with ChangePublisher(args.kafka_bootstrap) as publish, _open(args, federation) as base:
            ensure_federation_topics(args.kafka_bootstrap, federation)
            for spec in specs:
                sent = 0
                with _bar(args, "row") as bar:
                    bar.set_description(spec.name)
                    bar.total = base.count(spec)
                    for batch in base.batches(spec, BATCH):
                        publish(spec, batch)
                        sent += len(batch)
                        bar.update(len(batch))
                log.info("refbase.published", base=spec.name, published=sent)
                print(f"{spec.name}: {sent} published to {spec.topic}")
    except RefbaseError as exc:
        print(f"sgs refbase publish: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"sgs refbase publish: broker {args.kafka_bootstrap}: {exc}", file=sys.stderr)
        return 2
    return 0
