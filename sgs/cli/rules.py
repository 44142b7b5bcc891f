"""`sgs rules`: what the rule book says about a decision, for a credit centre's staff (D11, D14, D16, rules.toml)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

from sgs.cli.options import add_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rules",
        help="the rule sets in force (rules.toml): publication, publicity periods and repair of a decision",
    )
    rsub = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    q = rsub.add_parser(
        "publicity",
        help="which rule set decides a decision of this date and kind, whether each tier publishes it, its "
        "publicity bounds and earliest repair, as one JSON object",
    )
    add_option(q, "--kind", default=None, help="penalty (行政处罚) or license (行政许可); required")
    add_option(
        q, "--decided", default=None, help="decision date, YYYY-MM-DD (the periods count from it); required"
    )
    add_option(q, "--severity", default="一般", help="失信严重程度: 轻微, 一般 or 严重 (penalties)")
    add_option(q, "--procedure", default="一般程序", help="程序类型: 简易程序 or 一般程序 (penalties)")
    add_option(
        q,
        "--subject-type",
        default="法人及非法人组织",
        help="行政相对人类别: 法人及非法人组织, 自然人 or 个体工商户",
    )
    add_option(
        q, "--department", default=None, help="department key (scjg) or id (310101-scjg), for its floors"
    )
    add_option(
        q, "--config", default=None, help="federation config file (TOML): names the rule book and floors"
    )
    q.set_defaults(run=run_publicity)


def run_publicity(args: argparse.Namespace) -> int:
    from sgs.config import load_config
    from sgs.domain.kinds import KINDS
    from sgs.domain.rulebook import label, symbol

    try:
        if args.kind not in KINDS:
            raise ValueError(f"--kind: {args.kind!r} is not one of {', '.join(KINDS)}")
        try:
            decided = date.fromisoformat(args.decided or "")
        except ValueError:
            raise ValueError(f"--decided: {args.decided!r} is not a date YYYY-MM-DD") from None
        severity = symbol("severity", args.severity)
        procedure = symbol("procedure", args.procedure)
        subject_type = symbol("subject_type", args.subject_type)
    except ValueError as exc:
        print(f"sgs rules publicity: {exc}", file=sys.stderr)
        return 2
    rules = load_config(args.config).rules
    penalty = args.kind == "penalty"  # a licence has no severity or procedure
    ruling = rules.decide(
        args.kind,
        decided,
        severity=severity if penalty else None,
        procedure=procedure if penalty else None,
        subject_type=subject_type,
        department=args.department,
    )

    def iso(day: date | None) -> str | None:
        return day.isoformat() if day is not None else None

    answer: dict[str, Any] = {
        "rule_set": ruling.rule_set,
        "floor": ruling.floor,
        "tier": label("tier", ruling.tier),
        "published": ruling.published,
        "publicity_min_end": iso(ruling.publicity_min_end),
        "publicity_max_end": iso(ruling.publicity_max_end),
        "repair_earliest": iso(ruling.repair_earliest),
        "reasons": list(ruling.reasons),
        "sources": list(ruling.sources),
    }
    print(json.dumps(answer, ensure_ascii=False))
    return 0
