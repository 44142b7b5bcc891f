"""The monthly bulletin (按月通报, D8): its figures per district and per department, from the worker's aggregates.

D8 (000 方案 四(四); 001 六(四): 按月统计并通报各县区、各部门双公示工作情况, 及时性、完整性、准确性; 003 (十一)-(十三):
公示率、优质数据占比、数据范围覆盖率). Every figure is computed here from the counts in `worker_aggregates` (written
by `services.worker.aggregates`, read by `sgs.bulletin.counts`, summed over partitions and kinds), for the month and the month before it. The
definitions, with their sources, are in docs/report.md; `FIGURES` is their single list.

Measures read (per district, department, kind, month of submission):
  submitted            records that reached the municipal worker (each version once)
  rejected             records the district node refused at upload (stage node, D12)
  rejected_municipal   records the municipal worker refused (any stage after the node)
  rejected.<rule>      records refused for <rule>, at the node or the worker (a record counts once per rule)
  accepted             records accepted by the worker
  late.D5 / late.D6    accepted records published late (D5) / reported upward late (D6)
  portal_dated         accepted records that said when their portal published them (published_at: D6 measurable)
  mismatched           records whose subject did not match the legal-person / population base (D13)
  published            accepted records the municipal platform publishes (for publication: not D11's exceptions)
  clean                accepted records with no warning: reconciliation MATCHED, not late by D5 nor D6
  tier.<set>.<tier>    accepted penalties by the rule set and dishonesty tier that decided their publication
                       (rules.toml: seeds / ndrc-order-36; MINOR 轻微, GENERAL 一般, SERIOUS 严重)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sgs.config import Federation
from sgs.domain.rulebook import label

NOT_APPLICABLE = "—"  # a share whose denominator is zero, in the CSV and the page alike
CITY = "全市"
UNKNOWN = "unknown"  # what the worker labels a district or department outside the federation config


class ReportError(Exception):
    """The bulletin cannot be made: no data for the month, or the aggregates store is unreachable (exit 2)."""


def previous_month(month: str) -> str:
    year, mon = (int(p) for p in month.split("-"))
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def parse_month(text: str) -> str:
    """`YYYY-MM`, checked (the aggregates key months this way)."""
    try:
        year, mon = text.split("-")
        date(int(year), int(mon), 1)
    except ValueError:
        raise ReportError(f"月份应为 YYYY-MM，如 2026-10 / month must be YYYY-MM: {text!r}") from None
    if len(year) != 4 or len(mon) != 2:
        raise ReportError(f"月份应为 YYYY-MM，如 2026-10 / month must be YYYY-MM: {text!r}")
    return text


Counts = dict[tuple[str, str], Counter[str]]  # (district, department) -> measure -> count


def _share(numerator: int, denominator: int) -> str:
    return f"{100 * numerator / denominator:.1f}%" if denominator > 0 else NOT_APPLICABLE


def received(c: Counter[str]) -> int:
    """报送记录数: every record a department sent in the month (each version once) — those that reached the
    municipal worker plus those its district node refused."""
    return c["submitted"] + c["rejected"]


def should_be_published(c: Counter[str]) -> int:
    """应公示数: what was received, less what was accepted but is by rule not published (D11). A refused record
    counts: it should have been published and was not."""
    return received(c) - (c["accepted"] - c["published"])


@dataclass(frozen=True)
class Figure:
    """One column of the bulletin (and its previous-month twin)."""

    name: str
    compute: Callable[[Counter[str], tuple[int, int]], str]  # (counts, (departments reporting, in catalogue))


FIGURES: tuple[Figure, ...] = (
    Figure("报送记录数", lambda c, _: str(received(c))),
    Figure("通过记录数", lambda c, _: str(c["accepted"])),
    Figure("按时公示率(D5)", lambda c, _: _share(c["accepted"] - c["late.D5"], c["accepted"])),
    Figure("按时报送率(D6)", lambda c, _: _share(c["portal_dated"] - c["late.D6"], c["portal_dated"])),
    Figure(
        "退回率", lambda c, _: _share(c["rejected"] + c["rejected_municipal"], received(c))
    ),  # D12, every stage
    Figure("比对不一致数", lambda c, _: str(c["mismatched"])),  # D13
    Figure("公示率", lambda c, _: _share(c["published"], should_be_published(c))),
    Figure("优质数据占比", lambda c, _: _share(c["clean"], received(c))),
    Figure("数据范围覆盖率", lambda _, cov: _share(cov[0], cov[1])),
)
RULE_PREFIX = "退回率·"  # one column per rule seen in either month
TIER_PREFIX = "处罚数·"  # one column per (rule set, tier) seen in either month: a count, not a share


@dataclass
class Unit:
    """A row of the bulletin: the city, a district (or the municipal ingest node) or a department."""

    level: str  # 全市 / 区县 / 部门
    district: str
    district_name: str
    department: str
    department_name: str
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # month -> measures
    coverage: dict[str, tuple[int, int]] = field(default_factory=dict)  # month -> (reporting, catalogue)
    rank: int | None = None

    @property
    def key(self) -> str:
        """Unique among the rows: 全市, a division code, or `<division code>/<department id>`."""
        if self.department:
            return f"{self.district}/{self.department}"
        return self.district or CITY


@dataclass
class Bulletin:
    month: str
    previous: str
    federation_name: str
    rules: list[str]
    tiers: list[str]  # "<rule set>.<tier>" measures seen, e.g. "ndrc-order-36.MINOR"
    city: Unit
    districts: list[Unit]
    departments: list[Unit]

    @property
    def names(self) -> list[str]:
        """Every figure's column name, in order: the figures, rejection shares by rule, penalties by tier."""
        return (
            [f.name for f in FIGURES]
            + [f"{RULE_PREFIX}{r}" for r in self.rules]
            + [f"{TIER_PREFIX}{_tier_name(t)}" for t in self.tiers]
        )

    @property
    def columns(self) -> list[str]:
        return ["层级", "区划代码", "区县", "部门编码", "部门", "排名"] + [
            col for name in self.names for col in (name, f"{name}（上月）")
        ]

    def units(self) -> list[Unit]:
        return [self.city, *self.districts, *self.departments]

    def value(self, unit: Unit, name: str, month: str) -> str:
        counts = unit.counts.get(month, Counter())
        if name.startswith(RULE_PREFIX):
            return _share(counts[f"rejected.{name[len(RULE_PREFIX) :]}"], received(counts))
        if name.startswith(TIER_PREFIX):
            measure = next(t for t in self.tiers if f"{TIER_PREFIX}{_tier_name(t)}" == name)
            return str(counts[f"tier.{measure}"])
        figure = next(f for f in FIGURES if f.name == name)
        return figure.compute(counts, unit.coverage.get(month, (0, 0)))

    def row(self, unit: Unit) -> dict[str, str]:
        out = {
            "层级": unit.level,
            "区划代码": unit.district,
            "区县": unit.district_name,
            "部门编码": unit.department,
            "部门": unit.department_name,
            "排名": "" if unit.rank is None else str(unit.rank),
        }
        for name in self.names:
            out[name] = self.value(unit, name, self.month)
            out[f"{name}（上月）"] = self.value(unit, name, self.previous)
        return out


def _tier_name(measure: str) -> str:
    """ "ndrc-order-36.MINOR" -> "ndrc-order-36·轻微"."""
    rule_set, _, tier = measure.rpartition(".")
    return f"{rule_set}·{label('tier', tier)}"


def _rank_key(unit: Unit, month: str) -> tuple[float, float, int]:
    """Ranked by 优质数据占比, then 公示率, then records received (all descending) — the two shares 003 (十三)
    scores by, the one that needs every other figure to be good first."""
    c = unit.counts.get(month, Counter())
    n = received(c)
    quality = c["clean"] / n if n else 0.0
    due = should_be_published(c)
    published = c["published"] / due if due else 0.0
    return (-quality, -published, -n)


def _rank(units: list[Unit], month: str) -> list[Unit]:
    """Units that received anything get ranks 1..n; the rest follow unranked, in catalogue order."""
    reporting = [u for u in units if received(u.counts.get(month, Counter()))]
    ordered = sorted(reporting, key=lambda u: _rank_key(u, month))
    for rank, unit in enumerate(ordered, start=1):
        unit.rank = rank
    return ordered + [u for u in units if u not in reporting]


def build(federation: Federation, counts: dict[str, Counts], month: str) -> Bulletin:
    """The bulletin of `month` with the previous month beside it. Raises ReportError when `month` has no data."""
    previous = previous_month(month)
    if not counts.get(month):
        raise ReportError(f"{month} 没有汇总数据 / no aggregates for {month}")
    nodes = [federation.municipal, *federation.districts]
    departments: dict[tuple[str, str], Unit] = {}
    districts: dict[str, Unit] = {}
    for node in nodes:
        districts[node.code] = Unit("区县", node.code, node.name, "", "")
        for dept in node.departments:
            departments[(node.code, dept.id)] = Unit("部门", node.code, node.name, dept.id, dept.name)
    catalogue = {code: sum(1 for d in departments if d[0] == code) for code in districts}
    city = Unit("全市", "", CITY, "", "")
    for m in (month, previous):
        for (district, department), c in counts.get(m, {}).items():
            if district not in districts:  # outside the config (the worker says "unknown")
                districts[district] = Unit("区县", district, "（配置外）", "", "")
                catalogue[district] = 0
            key = (district, department)
            if key not in departments:
                departments[key] = Unit(
                    "部门", district, districts[district].district_name, department, "（配置外）"
                )
            for unit in (departments[key], districts[district], city):
                unit.counts.setdefault(m, Counter()).update(c)
        # 数据范围覆盖率: catalogue departments that sent anything this month (003 (十三)).
        reporting = {
            key
            for key, unit in departments.items()
            if unit.department_name != "（配置外）" and received(unit.counts.get(m, Counter()))
        }
        for code, unit in districts.items():
            unit.coverage[m] = (sum(1 for k in reporting if k[0] == code), catalogue[code])
        for key, unit in departments.items():
            unit.coverage[m] = (int(key in reporting), 0 if unit.department_name == "（配置外）" else 1)
        city.coverage[m] = (len(reporting), sum(catalogue.values()))

    def seen(prefix: str) -> list[str]:
        return sorted(
            {
                measure[len(prefix) :]
                for by_month in (counts.get(month, {}), counts.get(previous, {}))
                for c in by_month.values()
                for measure in c
                if measure.startswith(prefix)
            }
        )

    return Bulletin(
        month=month,
        previous=previous,
        federation_name=federation.name,
        rules=seen("rejected."),
        tiers=seen("tier."),
        city=city,
        districts=_rank(list(districts.values()), month),
        departments=_rank(list(departments.values()), month),
    )
