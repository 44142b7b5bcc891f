"""The bulletin as files operators open: CSV (UTF-8 with BOM, for Excel) and one self-contained Chinese HTML page."""

from __future__ import annotations

import csv
from pathlib import Path

from sgs.domain.bulletin import NOT_APPLICABLE, Bulletin


def write_csv(bulletin: Bulletin, path: Path) -> None:
    """UTF-8 with a BOM, so Excel opens the Chinese headers and names correctly."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=bulletin.columns)
        writer.writeheader()
        for unit in bulletin.units():
            writer.writerow(bulletin.row(unit))


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _bar_chart(bulletin: Bulletin, name: str) -> str:
    """An inline SVG bar chart of one share per district (this month; the previous month as a thin bar)."""
    rows = [u for u in bulletin.districts if u.department == ""]
    bar_h, gap, label_w, width = 14, 8, 120, 560
    height = len(rows) * (bar_h + gap) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{name}">'
    ]
    scale = width - label_w - 70
    for i, unit in enumerate(rows):
        y = 10 + i * (bar_h + gap)
        now = bulletin.value(unit, name, bulletin.month)
        before = bulletin.value(unit, name, bulletin.previous)
        parts.append(f'<text x="0" y="{y + bar_h - 3}" font-size="12">{_esc(unit.district_name)}</text>')
        for text_, h, dy, colour in ((now, bar_h - 4, 0, "#c0392b"), (before, 3, bar_h - 3, "#95a5a6")):
            if text_ != NOT_APPLICABLE:
                w = scale * float(text_.rstrip("%")) / 100
                parts.append(
                    f'<rect x="{label_w}" y="{y + dy}" width="{w:.1f}" height="{h}" fill="{colour}"/>'
                )
        parts.append(f'<text x="{label_w + scale + 6}" y="{y + bar_h - 3}" font-size="12">{_esc(now)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


CHARTS = ("优质数据占比", "公示率", "按时公示率(D5)")


def render_html(bulletin: Bulletin) -> str:
    """The page operators read: Chinese, one self-contained file (charts inline SVG, no script)."""
    import jinja2
    import markupsafe

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sgs.bulletin", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    figures = bulletin.names
    charts = [(name, markupsafe.Markup(_bar_chart(bulletin, name))) for name in CHARTS]
    return env.get_template("bulletin.html").render(
        b=bulletin, figures=figures, rows=[(u, bulletin.row(u)) for u in bulletin.units()], charts=charts
    )


def write(bulletin: Bulletin, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"bulletin-{bulletin.month}.csv"
    html_path = out_dir / f"bulletin-{bulletin.month}.html"
    write_csv(bulletin, csv_path)
    html_path.write_text(render_html(bulletin), encoding="utf-8")
    return [csv_path, html_path]
