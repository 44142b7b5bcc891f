"""The rule book: dated rule sets that decide, for one record, whether each tier publishes it, how long it is shown
and from when it can be repaired (D11, D14, D16; 国家发展改革委令第36号 for decisions from 2026-04-01).

The numbers live in `rules.toml` (docs/publication.md says where each comes from), not here. This module checks
that file (`sgs.config` reads it), picks the set in force on the record's decision date (the periods count from the decision date,
and a record keeps the rules of its time), applies the set's rules and any stricter floor the federation config
gives the deciding department (`[[rules.floors]]`), and answers with a `Ruling` that names the set and the floor.
Publication, the publicity sweep, withdrawal and credit repair all ask it; nothing else holds a period.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache, lru_cache
from itertools import product
from pathlib import Path
from typing import Any

from sgs.domain.kinds import KINDS
from sgs.domain.periods import add_months
from sgs.domain.publication import NATIONAL, PROVINCIAL
from sgs.domain.template import field_by_name

DEFAULT_RULE_BOOK = Path(__file__).resolve().parents[2] / "rules.toml"
TIERS = (PROVINCIAL, NATIONAL)
RELAY_MODES = ("publish", "collect", "none")  # received and published / received, not published / not sent
_PERIOD = re.compile(r"^(\d+)([dmy])$")
# What a rule's `when` may test, and the record field (Avro enum) each takes its values from.
_FACTS = {"severity": "severity", "procedure": "procedure", "subject_type": "category", "tier": "severity"}
_REQUIRED = (
    "provincial",
    "national",
    "min",
    "max",
    "end_field",
    "end_field_bounded",
    "auto_stop",
    "repairable",
)
END_FIELDS = {"license": "valid_to", "penalty": "publicity_end"}


class RuleBookError(Exception):
    """A rule book or floor that cannot be used; the message names the file and the key."""

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        super().__init__(f"{path}: {key}: {message}")
        self.path, self.key, self.detail = str(path), key, message


@dataclass(frozen=True)
class Period:
    """A publicity period as the rule book writes it: days, months or years from the decision date."""

    count: int
    unit: str  # "d", "m" or "y"

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a period like 3m, 1y or 0d")
        return cls(int(match[1]), match[2])

    def after(self, start: date) -> date:
        """The period's last day counted from `start` (民法典 第二百零一、二百零二条, as `add_months`)."""
        if self.unit == "d":
            return start + timedelta(days=self.count)
        return add_months(start, self.count * (12 if self.unit == "y" else 1))

    def __str__(self) -> str:
        return f"{self.count}{self.unit}"


@cache
def _symbols(fact: str) -> dict[str, str]:
    """Every way the rule book and the command line may name a value of `fact` (symbol or Chinese label) ->
    its Avro symbol; from the penalty schema, the one place the code lists are written."""
    f = field_by_name("penalty")[_FACTS[fact]]
    return {s: s for s in f.symbols} | {label: s for s, label in f.labels.items()}


def symbol(fact: str, text: str) -> str:
    """The Avro symbol of a severity, procedure or subject type named either way; ValueError when unknown."""
    try:
        return _symbols(fact)[text]
    except KeyError:
        raise ValueError(f"{text!r} is not a {fact} ({', '.join(_labels(fact))})") from None


def _labels(fact: str) -> list[str]:
    return list(field_by_name("penalty")[_FACTS[fact]].labels.values())


def label(fact: str, value: str | None) -> str | None:
    """The Chinese label of a symbol (轻微/一般/严重 for a tier)."""
    return None if value is None else field_by_name("penalty")[_FACTS[fact]].labels.get(value, value)


@dataclass(frozen=True, eq=False)
class Rule:
    when: Mapping[str, frozenset[str]]
    fields: Mapping[str, Any]
    sources: tuple[str, ...]

    def matches(self, facts: Mapping[str, str | None]) -> bool:
        return all(facts.get(name) in allowed for name, allowed in self.when.items())


@dataclass(frozen=True)
class RuleSet:
    id: str
    title: str
    effective_from: date | None  # None: every decision before the next set
    sources: tuple[str, ...]
    repeat_bar: Period | None  # D16: no repair of a penalty decided within this after a repair of the subject
    stated_end_limit: (
        Period | None
    )  # the latest 公示截止期 a penalty may state, where its tier does not bound it
    rules: tuple[Rule, ...]
    # resolve's answers by their four facts: every record of a kind with the same facts gets the same ruling fields,
    # and a record is ruled on at intake, at the worker and at each sink (issue 14)
    _resolved: dict[tuple[str | None, ...], tuple[dict[str, Any], list[str]]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def resolve(
        self, kind: str, severity: str | None, procedure: str | None, subject_type: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        """Every matching rule applied in order (a later field replaces an earlier one); the sources cited. Fresh
        copies: callers may change them."""
        facts_key = (kind, severity, procedure, subject_type)
        if facts_key not in self._resolved:
            self._resolved[facts_key] = self._resolve(kind, severity, procedure, subject_type)
        fields, sources = self._resolved[facts_key]
        return dict(fields), list(sources)

    def _resolve(
        self, kind: str, severity: str | None, procedure: str | None, subject_type: str | None
    ) -> tuple[dict[str, Any], list[str]]:
        facts = {
            "kind": kind,
            "severity": severity,
            "procedure": procedure,
            "subject_type": subject_type,
            "tier": severity,
        }
        fields: dict[str, Any] = {}
        decided_by: dict[str, Rule] = {}  # field -> the rule that set it last: its sources are the ruling's
        for rule in self.rules:
            if rule.matches(facts):
                fields.update(rule.fields)
                decided_by.update(dict.fromkeys(rule.fields, rule))
                facts["tier"] = fields.get("tier", facts["tier"])
        sources = list(self.sources)
        for rule in self.rules:
            if rule in decided_by.values():
                sources += [s for s in rule.sources if s not in sources]
        return fields, sources


@dataclass(frozen=True)
class Floor:
    """A stricter floor the federation config sets for some departments (e.g. market regulation's own periods):
    a longer minimum publicity, and/or a tier published that the rule set would not publish."""

    id: str
    departments: frozenset[str]  # department keys ("scjg") or ids ("310101-scjg")
    kinds: frozenset[str]
    tiers: frozenset[str] | None  # None: every tier
    effective_from: date | None
    min: Period | None
    relay: Mapping[str, str]
    sources: tuple[str, ...]

    def applies(self, department: str | None, kind: str, tier: str | None, decided_on: date) -> bool:
        if department is None or not {department, department.partition("-")[2]} & self.departments:
            return False
        if kind not in self.kinds or (self.tiers is not None and tier not in self.tiers):
            return False
        return self.effective_from is None or decided_on >= self.effective_from


@dataclass(frozen=True)
class Ruling:
    """What the rules in force on the decision date say about one record."""

    rule_set: str
    floor: str | None
    decided_on: date
    tier: str | None  # MINOR / GENERAL / SERIOUS; None for a licence
    relay: dict[str, bool]  # the tiers that receive the record -> for publication (D11)
    publicity_min_end: date | None
    publicity_max_end: date | None  # the longest the rules allow; None = long-term
    publicity_end: date | None  # the last day shown (inclusive); None = long-term
    bounded: bool  # a stated end is kept within the rules' bounds (else it wins, 从其规定)
    repair_earliest: date | None  # None: not repairable, `repair_refusal` says why
    repair_refusal: tuple[str, str] | None  # (rule id, Chinese message)
    repeat_bar: Period | None
    reasons: tuple[str, ...]  # why a date above is null
    sources: tuple[str, ...]

    @property
    def published(self) -> dict[str, bool]:
        return {tier: self.relay.get(tier, False) for tier in TIERS}


def _facts(body: Mapping[str, Any], department: str | None) -> dict[str, str | None]:
    """`RuleBook.decide`'s facts of a decoded `sgs.LicenseRecord` / `sgs.PenaltyRecord` but its stated end, in
    `decide`'s order (the department from its envelope when not given)."""
    if department is None and isinstance(body.get("envelope"), Mapping):
        department = body["envelope"].get("department")
    counterpart = body.get("counterpart") or {}
    return {
        "severity": body.get("severity"),
        "procedure": body.get("procedure"),
        "subject_type": counterpart.get("category"),
        "department": department,
    }


class RuleBook:
    """Dated rule sets plus the config's floors; `decide` and `ruling` answer for a record."""

    def __init__(
        self, sets: Iterable[RuleSet], floors: Iterable[Floor] = (), path: Path | None = None
    ) -> None:
        self.sets = tuple(sorted(sets, key=lambda s: s.effective_from or date.min))
        self.floors = tuple(floors)
        self.path = path
        # `relay_tiers` by the facts that decide them: a sink asks for every message it stores (issue 14), and a
        # stream has few distinct combinations (decision dates, departments)
        self._relay_tiers = lru_cache(maxsize=4096)(self._decide_relay_tiers)

    @classmethod
    def from_table(cls, path: Path, raw: Mapping[str, Any]) -> RuleBook:
        """The rule book in a parsed TOML file (`sgs.config.load_rule_book` reads it), checked."""
        sets = raw.get("sets")
        if not isinstance(sets, list) or not sets:
            raise RuleBookError(path, "sets", "a rule book needs at least one [[sets]]")
        book = cls((_rule_set(path, s, f"sets[{i}]") for i, s in enumerate(sets)), path=path)
        book._check(path)
        return book

    def with_floors(self, floors: Iterable[Floor]) -> RuleBook:
        return RuleBook(self.sets, floors, self.path)

    def in_force(self, decided_on: date) -> RuleSet:
        """The set whose `from` is the latest on or before the decision date (the first set before them all)."""
        chosen = self.sets[0]
        for rule_set in self.sets:
            if rule_set.effective_from is None or rule_set.effective_from <= decided_on:
                chosen = rule_set
        return chosen

    def decide(
        self,
        kind: str,
        decided_on: date,
        *,
        severity: str | None = None,
        procedure: str | None = None,
        subject_type: str | None = None,
        department: str | None = None,
        stated_end: date | None = None,
    ) -> Ruling:
        """The ruling for a record described by its facts (symbols, as in the Avro record)."""
        rule_set = self.in_force(decided_on)
        f, sources = rule_set.resolve(kind, severity, procedure, subject_type)
        tier = f.get("tier", severity if kind == "penalty" else None)
        modes = {t: f[t] for t in TIERS}
        min_end = f["min"].after(decided_on) if f["min"] is not None else None
        max_end = f["max"].after(decided_on) if f["max"] is not None else None
        floor = next((fl for fl in self.floors if fl.applies(department, kind, tier, decided_on)), None)
        floor_min = None
        if floor is not None:
            modes.update(floor.relay)
            sources += [s for s in floor.sources if s not in sources]
            if floor.min is not None:
                floor_min = floor.min.after(decided_on)
                min_end = max(min_end or floor_min, floor_min)
                max_end = max(max_end, min_end) if max_end is not None else None
        end = stated_end if stated_end is not None else max_end
        if stated_end is not None and f["end_field_bounded"]:
            end = max(end, min_end) if end is not None and min_end is not None else end
            end = min(end, max_end) if end is not None and max_end is not None else end
        elif floor_min is not None and end is not None and end < floor_min:
            end = floor_min
        reasons = []
        if min_end is None:
            reasons.append(f"publicity_min_end: {rule_set.id} 对此类信息不设最短公示期")
        if max_end is None:
            reasons.append(f"publicity_max_end: {rule_set.id} 对此类信息不设最长公示期（长期公示）")
        if not f["auto_stop"]:
            end = None
            reasons.append(f"publicity_end: {rule_set.id} 规定公示期满不自动停止公示")
        refusal: tuple[str, str] | None = None
        if not f["repairable"]:
            refusal = (f["not_repairable_rule"], f["not_repairable_because"])
        elif end is not None and max_end is not None and end > max_end:
            refusal = (
                "repair.beyond_max",
                f"公示期（至 {end}）超过{label('tier', tier) or ''}失信信息最长公示期（至 {max_end}），"
                f"按作出决定的机关所定期限公示，不予信用修复",
            )
        if refusal is not None:
            reasons.append(f"repair_earliest: {refusal[1]}")
        return Ruling(
            rule_set=rule_set.id,
            floor=floor.id if floor is not None else None,
            decided_on=decided_on,
            tier=tier,
            relay={t: mode == "publish" for t, mode in modes.items() if mode != "none"},
            publicity_min_end=min_end,
            publicity_max_end=max_end,
            publicity_end=end,
            bounded=bool(f["end_field_bounded"]),
            repair_earliest=None if refusal is not None else (min_end or decided_on),
            repair_refusal=refusal,
            repeat_bar=rule_set.repeat_bar,
            reasons=tuple(reasons),
            sources=tuple(sources),
        )

    def ruling(self, kind: str, body: Mapping[str, Any], department: str | None = None) -> Ruling:
        """The ruling for a decoded `sgs.LicenseRecord` / `sgs.PenaltyRecord` (the department from its envelope
        when not given)."""
        return self.decide(
            kind, body["decided_on"], **_facts(body, department), stated_end=body.get(END_FIELDS[kind])
        )

    def relay_tiers(self, kind: str, body: Mapping[str, Any]) -> frozenset[str]:
        """The tiers `ruling` relays a decoded record to, remembered: the stated publicity end, the one fact that
        varies per record, does not decide them."""
        facts = _facts(body, None)
        return self._relay_tiers(kind, body["decided_on"], *facts.values())

    def _decide_relay_tiers(
        self,
        kind: str,
        decided_on: date,
        severity: str | None,
        procedure: str | None,
        subject_type: str | None,
        department: str | None,
    ) -> frozenset[str]:
        ruling = self.decide(
            kind,
            decided_on,
            severity=severity,
            procedure=procedure,
            subject_type=subject_type,
            department=department,
        )
        return frozenset(ruling.relay)

    def longest_publicity(
        self, kind: str, body: Mapping[str, Any], department: str | None = None
    ) -> date | None:
        """The latest 公示截止期 the rules allow a penalty to state, for the plausibility check at intake
        (publicity_end.too_late): its tier's maximum where the set bounds stated ends (令第36号: 最长公示期届满后，
        自动停止公示), else the set's `stated_end_limit` (the seeds: a stated end wins, 从其规定, up to 5 years).
        None for a licence (its end is 有效期至) or where the set sets no limit."""
        if END_FIELDS[kind] != "publicity_end":
            return None
        ruling = self.ruling(kind, body, department)
        return ruling.publicity_max_end if ruling.bounded else self.stated_end_limit(body["decided_on"])

    def stated_end_limit(self, decided_on: date) -> date | None:
        """The set's `stated_end_limit` counted from the decision date: the bound for a penalty whose tier cannot be
        ruled on (its severity, procedure or subject type is invalid)."""
        limit = self.in_force(decided_on).stated_end_limit
        return limit.after(decided_on) if limit is not None else None

    def _check(self, path: Path) -> None:
        """Every set has distinct id and date, and gives every field for every kind of record it can meet."""
        ids = [s.id for s in self.sets]
        if len(set(ids)) != len(ids):
            raise RuleBookError(path, "sets", f"two sets share an id: {ids}")
        starts = [s.effective_from for s in self.sets]
        if len(set(starts)) != len(starts):
            raise RuleBookError(path, "sets", "two sets share a `from` date (or neither has one)")
        if any(s is None for s in starts[1:]):
            raise RuleBookError(path, "sets", "only the earliest set may leave out `from`")
        for rule_set in self.sets:
            for kind, severity, procedure, subject in _cases():
                f, _ = rule_set.resolve(kind, severity, procedure, subject)
                missing = [k for k in _REQUIRED if k not in f]
                if not f.get("repairable", True) and "not_repairable_because" not in f:
                    missing.append("not_repairable_because")
                if not f.get("repairable", True) and "not_repairable_rule" not in f:
                    missing.append("not_repairable_rule")
                if missing:
                    case = "/".join(
                        label(n, v) or ""
                        for n, v in (
                            ("severity", severity),
                            ("procedure", procedure),
                            ("subject_type", subject),
                        )
                        if v
                    )
                    raise RuleBookError(
                        path, f"sets.{rule_set.id}", f"no rule gives {', '.join(missing)} for {kind} {case}"
                    )


def _cases() -> Iterable[tuple[str, str | None, str | None, str | None]]:
    subjects = list(dict.fromkeys(_symbols("subject_type").values()))
    for subject in subjects:
        yield "license", None, None, subject
    yield from (
        ("penalty", *case)
        for case in product(
            dict.fromkeys(_symbols("severity").values()),
            dict.fromkeys(_symbols("procedure").values()),
            subjects,
        )
    )


def _values(path: Path, key: str, fact: str, raw: Any) -> frozenset[str]:
    items = raw if isinstance(raw, list) else [raw]
    try:
        if fact == "kind":
            bad = [k for k in items if k not in KINDS]
            if bad:
                raise ValueError(f"{bad[0]!r} is not a kind ({', '.join(KINDS)})")
            return frozenset(items)
        return frozenset(symbol(fact, str(item)) for item in items)
    except ValueError as exc:
        raise RuleBookError(path, key, str(exc)) from None


def _period(path: Path, key: str, raw: Any) -> Period | None:
    if raw == "none":
        return None
    try:
        return Period.parse(str(raw))
    except ValueError as exc:
        raise RuleBookError(path, key, f"{exc}, or none") from None


def _sources(path: Path, key: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise RuleBookError(path, key, "expected a list of strings")
    return tuple(raw)


def _date(path: Path, key: str, raw: Any) -> date | None:
    if raw is None:
        return None
    if not isinstance(raw, date):
        raise RuleBookError(path, key, f"expected a date (2026-04-01), got {raw!r}")
    return raw


def _rule_fields(path: Path, where: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """The outcome fields of a rule (or a floor's relay), checked; unknown keys are mistakes."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        at = f"{where}.{key}"
        if key in TIERS:
            if value not in RELAY_MODES:
                raise RuleBookError(path, at, f"{value!r} is not one of {', '.join(RELAY_MODES)}")
            out[key] = value
        elif key in ("min", "max"):
            out[key] = _period(path, at, value)
        elif key == "tier":
            out[key] = next(iter(_values(path, at, "tier", value)))
        elif key == "end_field":
            if value not in END_FIELDS.values():
                raise RuleBookError(path, at, f"{value!r} is not one of {', '.join(END_FIELDS.values())}")
            out[key] = value
        elif key in ("end_field_bounded", "auto_stop", "repairable"):
            if not isinstance(value, bool):
                raise RuleBookError(path, at, f"expected true or false, got {value!r}")
            out[key] = value
        elif key in ("not_repairable_because", "not_repairable_rule"):
            if not isinstance(value, str) or not value:
                raise RuleBookError(path, at, "expected a non-empty string")
            out[key] = value
        elif key not in ("when", "sources"):
            raise RuleBookError(path, at, "unknown key")
    return out


def _rule_set(path: Path, table: Any, where: str) -> RuleSet:
    if not isinstance(table, dict):
        raise RuleBookError(path, where, "expected a table")
    set_id = table.get("id")
    if not isinstance(set_id, str) or not set_id:
        raise RuleBookError(path, f"{where}.id", "a set needs an id")
    unknown = set(table) - {"id", "title", "from", "sources", "repeat_bar", "stated_end_limit", "rules"}
    if unknown:
        raise RuleBookError(path, f"{where}.{sorted(unknown)[0]}", "unknown key")
    rules = []
    raw_rules = table.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleBookError(path, f"{where}.rules", "a set needs at least one [[sets.rules]]")
    for i, r in enumerate(raw_rules):
        rwhere = f"{where}.rules[{i}]"
        if not isinstance(r, dict):
            raise RuleBookError(path, rwhere, "expected a table")
        when = r.get("when", {})
        if not isinstance(when, dict):
            raise RuleBookError(path, f"{rwhere}.when", "expected a table")
        bad = set(when) - {"kind", *_FACTS}
        if bad:
            raise RuleBookError(
                path, f"{rwhere}.when.{sorted(bad)[0]}", f"unknown; use {', '.join(['kind', *_FACTS])}"
            )
        rules.append(
            Rule(
                {k: _values(path, f"{rwhere}.when.{k}", k, v) for k, v in when.items()},
                _rule_fields(path, rwhere, r),
                _sources(path, f"{rwhere}.sources", r.get("sources", [])),
            )
        )
    bar, limit = table.get("repeat_bar"), table.get("stated_end_limit")
    return RuleSet(
        id=set_id,
        title=str(table.get("title", set_id)),
        effective_from=_date(path, f"{where}.from", table.get("from")),
        sources=_sources(path, f"{where}.sources", table.get("sources", [])),
        repeat_bar=_period(path, f"{where}.repeat_bar", bar) if bar is not None else None,
        stated_end_limit=_period(path, f"{where}.stated_end_limit", limit) if limit is not None else None,
        rules=tuple(rules),
    )


def floor_from_config(path: Path | str, table: Any, where: str) -> Floor:
    """One `[[rules.floors]]` table of the federation config."""
    path = Path(path)
    if not isinstance(table, dict):
        raise RuleBookError(path, where, "expected a table")
    floor_id = table.get("id")
    if not isinstance(floor_id, str) or not floor_id:
        raise RuleBookError(path, f"{where}.id", "a floor needs an id")
    unknown = set(table) - {"id", "departments", "kinds", "tiers", "from", "min", "sources", *TIERS}
    if unknown:
        raise RuleBookError(path, f"{where}.{sorted(unknown)[0]}", "unknown key")
    departments = table.get("departments")
    if (
        not isinstance(departments, list)
        or not departments
        or not all(isinstance(d, str) for d in departments)
    ):
        raise RuleBookError(path, f"{where}.departments", "expected a non-empty list of department keys")
    tiers = table.get("tiers")
    relay = _rule_fields(path, where, {t: table[t] for t in TIERS if t in table})
    floor_min = _period(path, f"{where}.min", table["min"]) if "min" in table else None
    if floor_min is None and not relay:
        raise RuleBookError(path, where, "a floor sets min, provincial or national")
    return Floor(
        id=floor_id,
        departments=frozenset(departments),
        kinds=_values(path, f"{where}.kinds", "kind", table.get("kinds", ["penalty"])),
        tiers=_values(path, f"{where}.tiers", "tier", tiers) if tiers is not None else None,
        effective_from=_date(path, f"{where}.from", table.get("from")),
        min=floor_min,
        relay=relay,
        sources=_sources(path, f"{where}.sources", table.get("sources", [])),
    )
