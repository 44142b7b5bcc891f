"""`sgs report --month YYYY-MM`: the monthly bulletin (按月通报, D8) as CSV and HTML, from the worker's aggregates.

Exit 0 with the paths written; 2 when the month has no data, the store is unreachable or the month is malformed
(message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sgs.cli.options import add_option


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "report",
        help="monthly bulletin per district and department (CSV + HTML)",
        description="按月通报：各区县、各部门的报送、按时率、退回、比对不一致、公示率、优质数据占比、数据范围覆盖率，"
        "附上月数。 The monthly bulletin (D8) from the worker's aggregates table, with the previous month beside "
        "each figure. Exit 2 when the month has no data or the store is unreachable.",
    )
    add_option(parser, "--config", default=None, help="federation config file (TOML)")
    add_option(
        parser, "--data-dir", default="var", help="directory for local state (SQLite stores, outboxes, logs)"
    )
    add_option(parser, "--month", required=False, default=None, help="the month, YYYY-MM (required)")
    add_option(
        parser,
        "--aggregates-url",
        default="sqlite:///{data_dir}/aggregates.db",
        help="SQLAlchemy URL of the worker's aggregates store",
    )
    add_option(parser, "--out", default=".", help="directory the bulletin files are written to")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sgs.bulletin.counts import read_counts
    from sgs.bulletin.render import write
    from sgs.config import load_config, store_url
    from sgs.domain.bulletin import ReportError, build, parse_month, previous_month

    if not args.month:
        print("sgs report: --month YYYY-MM is required (or SGS_MONTH)", file=sys.stderr)
        return 2
    try:
        month = parse_month(args.month)
        federation = load_config(args.config)
        url = store_url(args.aggregates_url, args.data_dir)
        bulletin = build(federation, read_counts(url, [month, previous_month(month)]), month)
        paths = write(bulletin, Path(args.out))
    except ReportError as exc:
        print(f"sgs report: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0
