"""`sgs keys new SIGNER`: a new Ed25519 signing key for one signer of the federation (issue 16).

The private key is written to `<key dir>/<signer>.key` (mode 0600; never overwritten), outside the repository;
the public key is printed as the line to put under `[keys]` in the federation config. To rotate, make the new key
in another directory, list both public keys for the signer, move the new key file in place and restart the
signer, then remove the old public key.

`sgs keys local`: a key for every signer of the config (those already in the key directory are kept), and a copy
of the config listing their public keys, for a federation on one machine (`sgs up` does this itself) or the demo
deployment of docker-compose.yml.

`sgs keys tls`: the Kafka link certificates of the Apache Kafka engine (issue 16): a CA for the federation and a
certificate with its key for every principal (the brokers, the admin, each node, the worker, each sink, the
tools), under `--kafka-certs` (made once, kept across runs; `sgs up --engine kafka` makes its own under
`<data dir>/tls`). A process is given the directory (`--kafka-certs`, `SGS_KAFKA_CERTS`) and uses
`<principal>.pem`/`.key` and `ca.pem` from it; a real deployment gives each only its own files.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from sgs.cli.options import add_option

_SIGNER = re.compile(r"^(node\.\d{6}|worker|sink\.(provincial|national))$")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "keys",
        help="signing keys of the federation's processes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="make a signer's private key and print its public key")
    new.add_argument("signer", help="node.<division code>, worker, sink.provincial or sink.national")
    add_option(new, "--key-dir", default="var/keys", help="directory to write <signer>.key in")
    new.set_defaults(run=run)
    local = actions.add_parser(
        "local",
        help="keys for every signer, for one machine or a demo deployment; prints the config that lists them",
    )
    add_option(local, "--config", default=None, help="federation config without [keys] (TOML)")
    add_option(local, "--key-dir", default="var/keys", help="directory of the keys, kept across runs")
    local.set_defaults(run=run_local)
    tls = actions.add_parser("tls", help="Kafka link certificates for every principal (Apache Kafka engine)")
    add_option(
        tls, "--config", default=None, help="federation config (TOML): its nodes and sinks are principals"
    )
    add_option(tls, "--kafka-certs", default="var/tls", help="directory of the CA and certificates, kept")
    add_option(
        tls,
        "--owner",
        type=int,
        default=None,
        help="user id to own the files (run as root; docker-compose.yml: the sgs image's user)",
    )
    add_option(
        tls,
        "--store-owner",
        type=int,
        default=None,
        help="user id to own the Java key stores instead (the broker and schema registry images' user)",
    )
    tls.set_defaults(run=run_tls)


def run(args: argparse.Namespace) -> int:
    from sgs.serialization.signing import encode_public, key_path, new_key_file

    if not _SIGNER.match(args.signer):
        print(
            f"sgs keys: {args.signer!r} is not a signer: node.<division code>, worker, sink.provincial or "
            "sink.national",
            file=sys.stderr,
        )
        return 2
    path = key_path(Path(args.key_dir), args.signer)
    public = encode_public(new_key_file(path))
    print(f"# private key: {path} (keep it there; never commit it)", file=sys.stderr)
    print(f'"{args.signer}" = ["{public}"]')
    return 0


def run_local(args: argparse.Namespace) -> int:
    from sgs.config import load_config
    from sgs.serialization.signing import local_keys

    print(local_keys(load_config(args.config), Path(args.key_dir)))
    return 0


def run_tls(args: argparse.Namespace) -> int:
    import os

    from sgs.config import TIERS, load_config
    from sgs.kafka.security import JAVA_PRINCIPALS, keystore_path, make_certs, principals

    federation = load_config(args.config)
    cert_dir = make_certs(Path(args.kafka_certs), principals((n.code for n in federation.nodes), TIERS))
    if args.owner is not None:
        for path in (cert_dir, *cert_dir.iterdir()):
            os.chown(path, args.owner, -1)
    if args.store_owner is not None:
        for principal in JAVA_PRINCIPALS:
            os.chown(keystore_path(cert_dir, principal), args.store_owner, -1)
    print(cert_dir)
    return 0
