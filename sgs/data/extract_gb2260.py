"""Extract the GB/T 2260 division table shipped as `sgs/data/gb2260.tsv` (run once, when the source changes).

Source: python-stdnum's `stdnum/cn/loc.dat`, compiled by its authors from the zh.wikipedia pages
"中华人民共和国行政区划代码 (1区 .. 8区)", which follow the GB/T 2260 code lists published by the Ministry of Civil
Affairs (民政部). Each county line may carry several names with year ranges, e.g. `[-1991]东郊区,[1992-]东丽区`;
a name with an open end is in use today. Usage: `python sgs/data/extract_gb2260.py > sgs/data/gb2260.tsv`.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import stdnum

_LOC = Path(stdnum.__file__).parent / "cn" / "loc.dat"
_NAME = re.compile(r"^(?:\[(\d*)-(\d*)\])?(.+)$")


def rows(text: str) -> list[tuple[str, str, str, str]]:
    """(code, name, first year, last year) for every name a code has had; empty years are open."""
    out: list[tuple[str, str, str, str]] = []
    province = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, _, value = line.strip().partition(" ")
        label = value.split("=", 1)[1].strip('"')
        if not line.startswith(" "):
            province = key
            continue
        for part in label.split(","):
            m = _NAME.match(part)
            if m is None:
                raise ValueError(f"unexpected entry {part!r} in {line!r}")
            out.append((province + key, m.group(3), m.group(1) or "", m.group(2) or ""))
    return out


def main() -> None:
    import importlib.metadata

    version = importlib.metadata.version("python-stdnum")
    print(f"# GB/T 2260 行政区划代码. Source: python-stdnum {version} stdnum/cn/loc.dat (from zh.wikipedia")
    print(
        f"# 中华人民共和国行政区划代码 pages). Extracted {datetime.date.today()} by sgs/data/extract_gb2260.py."
    )
    print("# code\tname\tfrom_year\tto_year (empty = open; a code with an open to_year is in use today)")
    for row in rows(_LOC.read_text(encoding="utf-8")):
        print("\t".join(row))


if __name__ == "__main__":
    main()
