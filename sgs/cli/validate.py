"""`sgs validate --kind license|penalty FILE...`: the edge quality check (D12) on template files, before upload.

One JSON object per record on stdout: {"file", "row", "ok", "errors": [{"field", "rule", "message", "value"}]}.
Exit 0 when every record is valid, 1 when any is not, 2 on a usage error or a file that cannot be read as a
template (message on stderr, no traceback; the other files are still checked). Streams: constant memory for any
number of rows; a progress bar on stderr for big files.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from sgs.cli.options import add_option

PROGRESS_MIN_BYTES = 5_000_000  # smaller files finish before a progress bar would help


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "validate",
        help="check template files (CSV, XLSX, JSON lines) against the 双公示 standard",
        description="质量检查：逐条检查行政许可/行政处罚模板文件，输出每条记录的全部问题（JSON lines）。 "
        "Check licence/penalty template files; one JSON object per record with every issue. "
        "Exit 0 all valid, 1 some invalid, 2 unreadable file or bad header.",
    )
    parser.add_argument("--kind", required=True, choices=["license", "penalty"], help="record kind")
    add_option(
        parser,
        "--config",
        default=None,
        help="federation config file (TOML): its rule book bounds 公示截止期",
    )
    add_option(
        parser,
        "--today",
        default=None,
        help="the date decisions may not be after (YYYY-MM-DD; default today)",
    )
    parser.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="CSV (UTF-8), XLSX or JSON lines files"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from tqdm import tqdm

    from sgs.config import load_config
    from sgs.domain.records import combine, to_json
    from sgs.domain.template_files import TemplateError, read_rows
    from sgs.domain.validation import validate

    try:
        today = datetime.date.fromisoformat(args.today) if args.today else datetime.date.today()
    except ValueError:
        print(f"sgs validate: --today must be YYYY-MM-DD, not {args.today!r}", file=sys.stderr)
        return 2
    rules = load_config(args.config).rules  # a bad config or rule book: one line, exit 2 (sgs.cli.main)
    out = sys.stdout
    any_invalid = unreadable = False
    for path in args.files:
        try:
            size = path.stat().st_size
        except OSError as exc:
            print(f"sgs validate: 无法读取 / cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
            unreadable = True
            continue
        progress = tqdm(
            desc=path.name, unit=" 行", unit_scale=True, file=sys.stderr, disable=size < PROGRESS_MIN_BYTES
        )
        try:
            for row, body, issues in read_rows(path, args.kind):
                if body is not None:
                    issues = combine(issues, validate(args.kind, body, today=today, rules=rules))
                errors = [i.as_reason() for i in issues]
                any_invalid = any_invalid or bool(errors)
                line = {"file": str(path), "row": row, "ok": not errors, "errors": to_json(errors)}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                progress.update()
        except TemplateError as exc:
            print(f"sgs validate: {exc}", file=sys.stderr)
            unreadable = True
        finally:
            progress.close()
    out.flush()
    return 2 if unreadable else 1 if any_invalid else 0
