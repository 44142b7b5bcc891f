"""`sgs tokens new DEPT`: a new upload token for one department (`<node code>-<key>`, e.g. `310101-scjg`).

The token is printed once, on stdout, and never stored: its scrypt hash is written into the department's entry of
the federation config (`token_hash`, replacing an older hash), which is all a node needs to check it (issue 16).
Hand the token to the department; restart the node to apply.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from sgs.cli.options import add_option


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokens",
        help="department upload tokens (the config keeps only their hashes)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="make a department's token, print it once, write its hash")
    new.add_argument("department", help="department id, <node code>-<key>")
    add_option(new, "--config", default=None, help="federation config to write the hash into (TOML)")
    new.set_defaults(run=run)


def with_hash(text: str, node: str, key: str, token_hash: str) -> str | None:
    """The config text with `token_hash` set in the entry of department `key` of node `node`; None when that entry
    is not one line `{ key = "...", ... }` inside the node's table, as the shipped file writes them."""
    lines = text.splitlines(keepends=True)
    entry = f'token_hash = "{token_hash}"'
    in_node = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            in_node = False
        if re.match(rf'^code\s*=\s*"{node}"', stripped):
            in_node = True
        if in_node and re.search(rf'\{{\s*key\s*=\s*"{re.escape(key)}"', line):
            if re.search(r'\btoken(_hash)?\s*=\s*"[^"]*"', line):
                lines[i] = re.sub(r'\btoken(_hash)?\s*=\s*"[^"]*"', lambda _: entry, line, count=1)
            else:
                lines[i] = re.sub(r"\s*\}", lambda _: f", {entry} }}", line, count=1)
            return "".join(lines)
    return None


def run(args: argparse.Namespace) -> int:
    from sgs.config import load_config
    from sgs.tokens import hash_token, new_token

    federation = load_config(args.config)
    dept = next((d for n in federation.nodes for d in n.departments if d.id == args.department), None)
    if dept is None:
        print(f"sgs tokens: no department {args.department!r} in {federation.path}", file=sys.stderr)
        return 2
    token = new_token(dept.id)
    path = Path(federation.path)
    text = with_hash(path.read_text(encoding="utf-8"), dept.node, dept.key, hash_token(token))
    if text is None:
        print(
            f"sgs tokens: cannot find the one-line entry of {dept.id} in {path} to write its hash",
            file=sys.stderr,
        )
        return 2
    path.write_text(text, encoding="utf-8")
    load_config(path)  # what was written reads back
    print(f"# the token of {dept.id} ({dept.name}); shown once, its hash is in {path}", file=sys.stderr)
    print(token)
    return 0
