"""Realistic licence and penalty decisions for any set of nodes of a federation, deterministic for a seed, with
controlled fractions of faults, each item saying what the federation is expected to make of it.

    gen = Generator(load_config(), seed=7, faults=FaultMix(late=0.1))
    for item in gen.take(1000):
        item.record     # Avro-shaped body of sgs.LicenseRecord / sgs.PenaltyRecord (no envelope, no annotations)
        item.row()      # the same as a template row (Chinese columns), for CSV/XLSX files
        item.expect     # "relayed", "provincial_only", "rejected", "duplicate" or "withdrawn"
        item.flags      # e.g. {"late", "name_mismatch"}
        item.decisions  # objections and credit repairs to post once the record is accepted (D15, D16)

The subjects (companies, 个体工商户, people) come from a `Population` built from `subjects_seed`, independent of
`seed`, so one reference-base snapshot (`sgs simulate --refbase-out`) serves every run of the stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from sgs.config import Department, Federation, Node
from sgs.domain.kinds import record_id
from sgs.domain.lifecycle import repair_refusal
from sgs.domain.publication import NATIONAL
from sgs.domain.rulebook import RuleBook
from sgs.domain.template import DATE, DECIMAL, ENUM, ENUM_ARRAY, template_fields
from sgs.domain.workdays import CHINA, Calendar
from simulators.catalogue import LicenceKind, Violation, department_kind
from simulators.subjects import (
    GIVEN,
    INDUSTRIES,
    Category,
    Population,
    Subject,
    make_legal_person,
    make_natural_person,
)

# Deregistrations in the population fall before this date, so every decision the generator dates (recent ones)
# meets a closed entity as closed (D13), and the snapshot does not change with the day it is generated.
CLOSED_BEFORE = date(2025, 1, 1)
WAN = Decimal(10_000)
MICRO = Decimal("0.000001")
# 行政处罚法 第五十一条: 简易程序 for 警告, or fines up to 200 元 (persons) / 3,000 元 (organisations).
SIMPLE_FINE_LIMIT = {
    Category.NATURAL_PERSON: 200,
    Category.LEGAL_PERSON: 3_000,
    Category.INDIVIDUAL_BUSINESS: 3_000,
}
HISTORY = 5_000  # records remembered per kind for duplicates, updates, revocations and objections

# Expected outcomes (`Submission.expect`): what the federation should make of an item.
RELAYED = "relayed"  # to the provincial and the national sink
PROVINCIAL_ONLY = "provincial_only"  # D11: simple procedure, or a natural person's penalty
REJECTED = "rejected"  # D12: held back with reasons
DUPLICATE = "duplicate"  # the same version again: absorbed, no new state
WITHDRAWN = "withdrawn"  # REVOKE: taken down wherever it was relayed (D4)
# Expected outcome of a decision (`Decision.expect`): applied, or else the rule the worker refuses it with.
APPLIED = "applied"


@dataclass(frozen=True)
class FaultMix:
    """Fraction of generated items carrying each fault; an item carries at most one, so they sum to <= 1."""

    late: float = 0.05  # decided so the submission is 1-20 working days past the D5 limit
    invalid: float = 0.03  # one field broken (bad check character, missing, wrong date order, ...): rejected
    name_mismatch: float = 0.02  # counterpart name differs from the reference base (D13)
    unknown_code: float = 0.01  # a valid code the reference base does not hold (D13)
    deregistered: float = 0.005  # a company the base marks 注销 / 吊销 before the decision (D13)
    duplicate: float = 0.01  # an earlier record sent again, same version
    update: float = 0.02  # an earlier record, version + 1, corrected (D4)
    revoke: float = 0.01  # an earlier record, version + 1, operation REVOKE (D4)
    objection: float = 0.01  # an earlier licence, version + 1, 当前状态 异议 (D15)
    # Decisions on a fresh record, posted once the municipal platform accepted it (D15, D16):
    objection_taken_down: float = 0.005  # objection raised, then upheld: withdrawn (OBJECTION_UPHELD)
    objection_kept: float = 0.005  # objection raised, then not upheld: published, mark cleared
    repaired: float = (
        0.005  # credit repair of an eligible 1-year penalty decided months ago: withdrawn (REPAIRED)
    )
    repair_refused: float = 0.005  # credit repair D16 refuses: too early, or a 严重失信 penalty

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0 <= value <= 1:
                raise ValueError(f"fault fraction {f.name}={value} is outside 0..1")
        if self.total() > 1:
            raise ValueError(f"fault fractions sum to {self.total():.3f} > 1")

    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    @classmethod
    def none(cls) -> FaultMix:
        return cls(**{f.name: 0.0 for f in fields(cls)})

    def without_decisions(self) -> FaultMix:
        """The mix for a channel that cannot carry decisions on records (template files, Kafka straight)."""
        return replace(self, **{name: 0.0 for name in DECISIONS})


FAULTS = tuple(f.name for f in fields(FaultMix))
FOLLOW_UPS = ("duplicate", "update", "revoke", "objection")
DECISIONS = ("objection_taken_down", "objection_kept", "repaired", "repair_refused")
REPAIRS = ("repaired", "repair_refused")


@dataclass(frozen=True)
class Decision:
    """A decision on a record (`sgs.LifecycleDecision`, D15, D16) as its department posts it to
    `POST /v1/decisions`, and what the municipal worker should make of it."""

    record_id: str
    decision: str  # sgs.DecisionKind
    authority: str
    authority_uscc: str
    decided_on: date
    expect: str  # APPLIED, or the rule id the worker refuses it with (D16: repair.too_early, repair.serious)

    @property
    def key(self) -> tuple[str, str]:
        """Unique in a stream: a record gets each kind of decision at most once."""
        return self.record_id, self.decision

    def http_body(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "decision": self.decision,
            "authority": self.authority,
            "authority_uscc": self.authority_uscc,
            "decided_on": self.decided_on.isoformat(),
        }


@dataclass(frozen=True)
class Submission:
    """One record as a department hands it to its district node, and what should become of it."""

    kind: str  # "license" / "penalty"
    department: Department
    record: dict[str, Any]  # Avro fields of the record kind, without envelope and annotations
    version: int
    operation: str  # CREATE / UPDATE / REVOKE (sgs.Operation)
    published_at: datetime | None  # on the department's own portal (D6)
    expect: str  # RELAYED, PROVINCIAL_ONLY, REJECTED, DUPLICATE or WITHDRAWN
    flags: frozenset[str] = frozenset()  # late, name_mismatch, unknown_code, deregistered, objection, update
    fault: str | None = None  # the FaultMix field injected, None for a clean record
    expected_issue: tuple[str, str] | None = (
        None  # (template column, rule id) an invalid record must fail with
    )
    working_days: int = 0  # working days from the decision to the generator's `today` (D5)
    decisions: tuple[Decision, ...] = ()  # to post, in order, once the municipal platform accepted the record
    relay: dict[str, bool] = field(default_factory=dict)  # the rule book's tiers for this version (D11)

    @property
    def record_id(self) -> str:
        return record_id(self.kind, self.record["authority_uscc"], self.record["decision_doc_no"])

    @property
    def tiers(self) -> dict[str, bool]:
        """The sinks this version should reach, each with its for-publication flag (D11); none when it is
        rejected or withdrawn. A duplicate names the tiers its first copy reached."""
        if self.expect in (REJECTED, WITHDRAWN):
            return {}
        return self.relay

    @property
    def node(self) -> str:
        return self.department.node

    @property
    def decided_on(self) -> date:
        return self.record["decided_on"]

    def row(self) -> dict[str, str]:
        """The record as a template row: Chinese columns, text cells, labels for code lists."""
        return to_row(self.kind, self.record)

    def http_body(self) -> dict[str, Any]:
        """The JSON a department posts to `POST /v1/records/{kind}`: template columns plus version, operation
        and the portal publication time."""
        body: dict[str, Any] = dict(self.row())
        body["version"] = self.version
        body["operation"] = self.operation
        if self.published_at is not None:
            body["published_at"] = self.published_at.isoformat()
        return body


def to_row(kind: str, record: dict[str, Any]) -> dict[str, str]:
    """An Avro-shaped body -> template row (the inverse of `sgs.domain.records.parse_row` for well-formed bodies)."""
    row: dict[str, str] = {}
    for f in template_fields(kind):
        value = record[f.path[0]] if len(f.path) == 1 else record[f.path[0]][f.path[1]]
        if value is None:
            text = ""
        elif f.type == DATE:
            text = value.isoformat()
        elif f.type == DECIMAL:
            text = f"{value:f}"
        elif f.type == ENUM:
            text = f.labels.get(value, value)
        elif f.type == ENUM_ARRAY:
            text = ";".join(f.labels.get(v, v) for v in value)
        else:
            text = value
        row[f.column] = text
    return row


@cache
def population_for(node_codes: tuple[tuple[str, str], ...], subjects_seed: int) -> Population:
    """The subjects of a federation: built once per process for a given tree and seed (it takes ~1 s)."""
    return Population.build(dict(node_codes), subjects_seed, closed_before=CLOSED_BEFORE)


def federation_population(federation: Federation, subjects_seed: int = 0) -> Population:
    return population_for(tuple((n.code, n.name) for n in federation.nodes), subjects_seed)


def _district_char(node: Node) -> str:
    """The district in document numbers: 静安区 -> 静; the municipal node has none (沪市监处〔…〕)."""
    return "" if node.level == "municipal" else node.name[0]


class Generator:
    """Decisions of the departments of `districts` (division codes; None = every node, municipal included).

    `today` (default: today in Beijing) is the submission day the decision dates are chosen against: a late item is decided so that
    `today` is 1-20 working days past the D5 limit on the real calendar; on-time items within it."""

    def __init__(
        self,
        federation: Federation,
        seed: int = 1,
        faults: FaultMix | None = None,
        *,
        districts: list[str] | None = None,
        subjects_seed: int = 0,
        today: date | None = None,
        calendar: Calendar | None = None,
        penalty_share: float = 0.6,
    ) -> None:
        self.federation = federation
        self.rules: RuleBook = federation.rules
        self.faults = faults or FaultMix()
        self.seed = seed
        self.rng = random.Random(seed)
        self.calendar = calendar or Calendar(federation.timeliness.calendar_overrides)
        self.limit = federation.timeliness.publish_working_days
        self.penalty_share = penalty_share
        nodes = [n for n in federation.nodes if districts is None or n.code in districts]
        unknown = set(districts or ()) - {n.code for n in federation.nodes}
        if unknown:
            raise ValueError(
                f"unknown district(s) {sorted(unknown)}; known: {[n.code for n in federation.nodes]}"
            )
        self.nodes = {n.code: n for n in nodes}
        self.departments = [d for n in nodes for d in n.departments]
        self.population = federation_population(federation, subjects_seed)
        self.districts = sorted(code for code in self.population.people if code != federation.municipal.code)
        self._sequence: dict[tuple[str, str], int] = {}
        self._history: dict[str, list[Submission]] = {"license": [], "penalty": []}
        self._repaired_subjects: set[str] = set()  # codes of subjects that got a repair decision
        self._thresholds = self._cumulative(self.faults)
        self.today = today or datetime.now(CHINA).date()

    # --- the calendar ------------------------------------------------------------------------------------------

    @property
    def today(self) -> date:
        return self._today

    @today.setter
    def today(self, value: date) -> None:
        """Recompute, for the new day, which decision dates are how many working days back (D5)."""
        self._today = value
        self.by_working_days: dict[int, list[date]] = {}
        count, day = 0, value
        while count <= self.limit + 20:
            self.by_working_days.setdefault(count, []).append(day)
            if self.calendar.is_working_day(day):
                count += 1
            day -= timedelta(days=1)

    def _decision_date(self, late: bool, fault: str | None = None) -> tuple[date, int]:
        if (
            fault == "repaired"
        ):  # D16: past the 一般 tier's minimum publicity by a month; not yet expired (D14)
            minimum = self.rules.decide("penalty", self.today, severity="GENERAL", procedure="GENERAL")
            wait = (minimum.publicity_min_end or self.today) - self.today
            day = self.today - wait - timedelta(days=31 + self.rng.randrange(120))
            while not self.calendar.is_working_day(day):
                day -= timedelta(days=1)
            return day, self.calendar.working_days_between(day, self.today)[0]
        if late:
            days = self.limit + self.rng.randint(1, 20)
        else:  # most departments publish within a few days; some use the whole allowance
            days = self.rng.choices(
                range(self.limit + 1), weights=[max(1, 10 - k) for k in range(self.limit + 1)]
            )[0]
        return self.rng.choice(self.by_working_days[days]), days

    # --- the stream --------------------------------------------------------------------------------------------

    @staticmethod
    def _cumulative(faults: FaultMix) -> list[tuple[float, str]]:
        out, total = [], 0.0
        for name in FAULTS:
            total += getattr(faults, name)
            out.append((total, name))
        return out

    def take(self, count: int) -> Iterator[Submission]:
        for _ in range(count):
            yield self.next()

    def __iter__(self) -> Iterator[Submission]:
        while True:
            yield self.next()

    def next(self) -> Submission:
        r = self.rng.random()
        fault = next((name for threshold, name in self._thresholds if r < threshold), None)
        if fault in FOLLOW_UPS:
            item = self._follow_up(fault)
            if item is not None:
                return item
            fault = None  # nothing to follow up yet: a fresh record instead
        item = self._fresh(fault)
        if item.decisions:
            return item  # never followed up: a later version would race its decisions
        if item.expect != REJECTED:
            self._remember(item)
        return item

    def _remember(self, item: Submission) -> None:
        history = self._history[item.kind]
        if len(history) < HISTORY:
            history.append(item)
        else:
            history[self.rng.randrange(HISTORY)] = item

    # --- fresh records -----------------------------------------------------------------------------------------

    def _fresh(self, fault: str | None) -> Submission:
        dept = self.rng.choice(self.departments)
        node = self.nodes[dept.node]
        catalogue = department_kind(dept.key)
        kind = "penalty" if fault in REPAIRS or self.rng.random() < self.penalty_share else "license"
        entries: tuple[LicenceKind | Violation, ...] = (
            catalogue.licences if kind == "license" else catalogue.violations
        )
        if fault == "deregistered":  # only organisations are deregistered (D13)
            entries = tuple(e for e in entries if Category.LEGAL_PERSON in e.counterparts) or entries
        entry = self.rng.choice(entries)
        decided_on, working_days = self._decision_date(fault == "late", fault)
        subject, flags = self._subject(node, entry, fault)
        severity = None
        if fault in REPAIRS:
            subject, fault = self._repair_subject(node, entry, subject, fault)
        if fault in REPAIRS:  # refused: too early (a recent penalty), or 严重失信 (D16)
            serious = fault == "repair_refused" and self.rng.random() < 0.5
            severity = "SERIOUS" if serious else "GENERAL"
        counterpart = self._counterpart(subject, fault)
        if fault == "name_mismatch":
            counterpart["name"] = self._misspelt(subject)
        seq = self._next_sequence(dept, kind)
        doc_template = catalogue.licence_doc if kind == "license" else catalogue.penalty_doc
        doc_no = doc_template.format(d=_district_char(node), y=decided_on.year, n=f"{seq:08d}")
        if isinstance(entry, LicenceKind):
            record = self._licence(dept, node, entry, subject, counterpart, doc_no, decided_on, seq)
        else:
            record = self._penalty(dept, entry, subject, counterpart, doc_no, decided_on, severity)
        expected_issue = None
        if fault == "invalid":
            expected_issue = self._break(kind, record)
        if fault == "late" or working_days > self.limit:
            flags.add("late")
        rid = record_id(kind, dept.uscc, doc_no)
        relay = self._relay(kind, record, dept) if fault != "invalid" else {}
        decisions = self._decisions(fault, rid, dept, kind, record) if fault in DECISIONS else ()
        return Submission(
            kind=kind,
            department=dept,
            record=record,
            version=1,
            operation="CREATE",
            # a decision dated in the future has no honest publication time: leave it out
            published_at=None
            if fault == "invalid" and record["decided_on"] > self.today
            else self._published_at(decided_on),
            expect=expected_outcome("CREATE", fault, relay),
            relay=relay,
            flags=frozenset(flags),
            fault=fault,
            expected_issue=expected_issue,
            working_days=working_days,
            decisions=decisions,
        )

    def _repair_subject(
        self, node: Node, entry: LicenceKind | Violation, subject: Subject, fault: str
    ) -> tuple[Subject, str | None]:
        """At most one repair decision per subject: D16 also bars repairing a penalty decided within a year after
        an earlier repair of the same subject, so a second repair of a subject could be refused for that instead
        of for what the item expects. With a stream of one repair per subject the expectation holds whether or
        not the worker applies that rule. No fresh subject after a few tries: a plain record instead."""
        for _ in range(20):
            code = subject.uscc or (subject.person.id_no if subject.person else subject.name)
            if code not in self._repaired_subjects:
                self._repaired_subjects.add(code)
                return subject, fault
            subject, _ = self._subject(node, entry, fault)
        return subject, None

    def _relay(self, kind: str, record: dict[str, Any], dept: Department) -> dict[str, bool]:
        return self.rules.ruling(kind, record, dept.id).relay

    def _decisions(
        self, fault: str, rid: str, dept: Department, kind: str, record: dict[str, Any]
    ) -> tuple[Decision, ...]:
        """The decisions of a decision fault, dated on or after the record's decision and not after today.
        The deciding body is the department (it handles objections and repairs of its own records). Whether a
        repair is admissible, and why not, is the rule book's to say (D16, `sgs.domain.lifecycle.repair_refusal`)."""

        def on(kind: str, day: date, expect: str = APPLIED) -> Decision:
            return Decision(rid, kind, dept.name, dept.uscc, day, expect)

        def between(start: date) -> date:
            return start + timedelta(days=self.rng.randint(0, max(0, (self.today - start).days)))

        decided_on = record["decided_on"]
        if fault in ("objection_taken_down", "objection_kept"):  # D15
            raised = between(decided_on)
            outcome = "OBJECTION_TAKEN_DOWN" if fault == "objection_taken_down" else "OBJECTION_KEPT"
            return on("OBJECTION_RAISED", raised), on(outcome, between(raised))
        ruling = self.rules.ruling(kind, record, dept.id)
        if fault == "repaired" and ruling.repair_earliest is not None:
            return (on("REPAIR_APPROVED", between(ruling.repair_earliest)),)
        day = between(decided_on)
        refusal = repair_refusal(ruling, day)
        return (on("REPAIR_APPROVED", day, refusal.rule if refusal is not None else APPLIED),)

    def _next_sequence(self, dept: Department, kind: str) -> int:
        """Document numbers run on per department and kind from a seed-chosen start, so two runs with different
        seeds almost never reuse an identity."""
        key = (dept.id, kind)
        seq = self._sequence.get(key)
        if seq is None:
            seq = self.rng.randrange(1, 90_000_000)
        self._sequence[key] = seq + 1
        return seq

    def _published_at(self, decided_on: date) -> datetime | None:
        """Portal publication (D6) the day before submission or on the decision day, whichever is later; a
        third of departments do not say."""
        if self.rng.random() < 0.3:
            return None
        day = max(decided_on, self.today - timedelta(days=1))
        hour = 0 if day == self.today else self.rng.randint(9, 17)
        minute = self.rng.randrange(60)
        # today at 00:00: any later time today may still be ahead of the clock (published_at.future)
        if day == self.today:
            minute = 0
        return datetime.combine(day, time(hour, minute), CHINA)

    def _subject(
        self, node: Node, entry: LicenceKind | Violation, fault: str | None
    ) -> tuple[Subject, set[str]]:
        district = node.code if node.level == "district" else self.rng.choice(self.districts)
        categories = entry.counterparts
        if fault == "deregistered" and Category.LEGAL_PERSON in categories:
            return self.rng.choice(self.population.closed[district]), {"deregistered"}
        category = categories[0] if self.rng.random() < 0.6 else self.rng.choice(categories)
        if fault == "unknown_code":
            return self._stranger(district, category, entry), {"unknown_code"}
        flags = {"name_mismatch"} if fault == "name_mismatch" else set()
        if category == Category.NATURAL_PERSON:
            return self.rng.choice(self.population.people[district]), flags
        industries = entry.industries if entry.industries != ("",) else tuple(INDUSTRIES)
        pool = self.population.legal if category == Category.LEGAL_PERSON else self.population.shops
        return self.rng.choice(pool[district, self.rng.choice(industries)]), flags

    def _stranger(self, district: str, category: str, entry: LicenceKind | Violation) -> Subject:
        """A subject with valid codes that the reference base does not hold."""
        while True:
            if category == Category.NATURAL_PERSON:
                subject = make_natural_person(self.rng, district)
                key = subject.person.id_no if subject.person else ""
            else:
                industry = self.rng.choice(entry.industries) if entry.industries != ("",) else "trade"
                subject = make_legal_person(self.rng, district, "", industry)
                subject = replace(subject, category=category)
                key = subject.uscc or ""
            if key not in self.population.taken:
                return subject

    def _counterpart(self, subject: Subject, fault: str | None) -> dict[str, Any]:
        person = subject.person
        name = subject.name
        if "（" in name and self.rng.random() < 0.5:
            name = name.replace("（", "(").replace(
                "）", ")"
            )  # half-width brackets: still the same name (D13)
        cp: dict[str, Any] = {
            "name": name,
            "category": subject.category,
            "uscc": None,
            "business_reg_no": None,
            "org_code": None,
            "tax_reg_no": None,
            "institution_cert_no": None,
            "social_org_reg_no": None,
            "legal_rep": None,
            "legal_rep_id_type": None,
            "legal_rep_id_no": None,
            "id_type": None,
            "id_no": None,
        }
        if subject.category == Category.NATURAL_PERSON:
            assert person is not None
            cp["id_type"], cp["id_no"] = "身份证", person.id_no
        else:
            cp["uscc"] = subject.uscc
            if person is not None:
                cp["legal_rep"] = person.name
                if self.rng.random() < 0.5:
                    cp["legal_rep_id_type"], cp["legal_rep_id_no"] = "身份证", person.id_no
            if (
                subject.uscc and self.rng.random() < 0.2
            ):  # transition-period 组织机构代码, as printed: XXXXXXXX-X
                cp["org_code"] = f"{subject.uscc[8:16]}-{subject.uscc[16]}"
        return cp

    def _misspelt(self, subject: Subject) -> str:
        """The registered name with one character changed: a real mismatch, not a width or spacing variant."""
        name = subject.name
        if subject.category == Category.NATURAL_PERSON:
            i = len(name) - 1
        else:
            i = 2 if name.startswith("上海") else 0  # inside the 字号
        replacement = self.rng.choice([c for c in GIVEN if c != name[i]])
        return name[:i] + replacement + name[i + 1 :]

    def _licence(
        self,
        dept: Department,
        node: Node,
        entry: LicenceKind,
        subject: Subject,
        counterpart: dict[str, Any],
        doc_no: str,
        decided_on: date,
        seq: int,
    ) -> dict[str, Any]:
        valid_to = None
        if entry.validity_years is not None:
            valid_to = date(decided_on.year + entry.validity_years, decided_on.month, 1) - timedelta(days=1)
            valid_to = max(valid_to, decided_on)
        item = self.rng.choice(("汽油", "油漆、稀释剂", "液化石油气")) if "{item}" in entry.content else ""
        return {
            "counterpart": counterpart,
            "decision_doc_name": f"{entry.name}决定书",
            "decision_doc_no": doc_no,
            "license_category": entry.category,
            "license_cert_name": entry.cert_name,
            "license_no": f"{entry.number_prefix}{node.code}{seq % 1_000_000:06d}{seq % 10}"
            if entry.cert_name
            else None,
            "license_content": entry.content.format(subject=counterpart["name"], item=item),
            "decided_on": decided_on,
            "valid_from": decided_on,
            "valid_to": valid_to,
            "authority": dept.name,
            "authority_uscc": dept.uscc,
            "status": "NORMAL",
            "source_unit": dept.name,
            "source_unit_uscc": dept.uscc,
            "remarks": None,
        }

    def _amount(self, low: int, high: int) -> Decimal:
        """元 -> 万元 with 6 decimals; officials round fines to hundreds above a thousand."""
        yuan = self.rng.randint(low, high)
        if yuan >= 1_000:
            yuan = max(low, round(yuan, -2))
        return (Decimal(yuan) / WAN).quantize(MICRO)

    def _penalty(
        self,
        dept: Department,
        entry: Violation,
        subject: Subject,
        counterpart: dict[str, Any],
        doc_no: str,
        decided_on: date,
        severity: str | None = None,
    ) -> dict[str, Any]:
        """`severity` forces the D16 terms of a repair item: GENERAL with a 1-year publicity period, or SERIOUS
        (general procedure)."""
        types = list(entry.penalty_types)
        limit = SIMPLE_FINE_LIMIT[subject.category]
        simple = False
        fine = confiscated = None
        if types == ["WARNING"]:
            simple = self.rng.random() < 0.7
        if "FINE" in types and entry.fine_yuan:
            low, high = entry.fine_yuan
            if types == ["FINE"] and low <= limit and self.rng.random() < 0.6:
                simple, high = True, min(high, limit)
            fine = self._amount(low, high)
        if "CONFISCATION" in types and entry.confiscation_yuan:
            confiscated = self._amount(*entry.confiscation_yuan)
        serious = not simple and self.rng.random() < entry.serious
        if severity is not None:
            serious, simple = severity == "SERIOUS", False
        content = []
        if "WARNING" in types:
            content.append("警告")
        if confiscated is not None:
            content.append(f"没收违法所得人民币{confiscated * WAN:,.2f}元")
        if fine is not None:
            content.append(f"罚款人民币{fine * WAN:,.2f}元")
        if "SUSPENSION" in types:
            content.append("责令停产整治")
        place = self.rng.choice(("经营场所", "门店", "网络店铺", "仓库"))
        item = self.rng.choice(entry.items)
        # 令第36号: a department may call a 简易程序 penalty 轻微 itself (the rule book makes it 轻微 anyway)
        minor = simple and severity is None and self.rng.random() < 0.5
        publicity_end = None
        # D14: 1 year, 3 years for 严重失信; none stated for 简易程序, which 令第36号 shows 3 months at most (轻微)
        if not simple and (severity is not None or self.rng.random() < 0.7):
            publicity_end = date(decided_on.year + (3 if serious else 1), decided_on.month, 1) - timedelta(
                days=1
            )
            publicity_end = max(publicity_end, decided_on)
        body = {
            "counterpart": counterpart,
            "decision_doc_no": doc_no,
            "violation_type": entry.type,
            "violation_facts": entry.facts.format(subject=counterpart["name"], place=place, item=item),
            "legal_basis": entry.basis,
            "penalty_types": types,
            "penalty_content": "，".join(content),
            "fine_amount": fine,
            "confiscated_amount": confiscated,
            "license_suspended": None,
            "decided_on": decided_on,
            "valid_to": decided_on + timedelta(days=180) if "SUSPENSION" in types else None,
            "publicity_end": publicity_end,
            "authority": dept.name,
            "authority_uscc": dept.uscc,
            "source_unit": dept.name,
            "source_unit_uscc": dept.uscc,
            "remarks": None,
            "procedure": "SIMPLE" if simple else "GENERAL",
            "severity": "SERIOUS" if serious else "MINOR" if minor else "GENERAL",
        }
        # A department states no end beyond what the rule book in force allows (令第36号 bounds it by tier; the
        # node refuses a later one as publicity_end.too_late, D14)
        longest = self.rules.longest_publicity("penalty", body)
        if publicity_end is not None and longest is not None and publicity_end > longest:
            body["publicity_end"] = longest
        return body

    def _break(self, kind: str, record: dict[str, Any]) -> tuple[str, str]:
        """Break one field the way departments do; returns the (template column, rule id) that must catch it."""
        cp = record["counterpart"]
        options = ["missing_content"]
        if cp["category"] == Category.NATURAL_PERSON:
            options.append("id_check")
        else:
            options += ["uscc_check", "uscc_missing"]
        if kind == "license":
            options.append("date_order" if record["valid_to"] is not None else "future_decision")
        else:
            options.append("future_decision")
            if record["fine_amount"] is not None:
                options.append("fine_missing")
        variant = self.rng.choice(options)
        record["counterpart"] = cp = dict(cp)
        if variant == "missing_content":
            name = "license_content" if kind == "license" else "violation_facts"
            record[name] = ""
            return ("许可内容" if kind == "license" else "违法事实"), "required"
        if variant == "id_check":
            cp["id_no"] = _wrong_check(cp["id_no"], "0123456789X")
            return "证件号码", "ric.check_char"
        if variant == "uscc_check":
            cp["uscc"] = _wrong_check(cp["uscc"], "0123456789ABCDEFGHJKLMNPQRTUWXY")
            cp["org_code"] = None
            return "行政相对人代码_1(统一社会信用代码)", "uscc.check_char"
        if variant == "uscc_missing":
            cp["uscc"] = None
            cp["org_code"] = None
            return "行政相对人代码_1(统一社会信用代码)", "required"
        if variant == "date_order":
            record["valid_to"] = record["valid_from"] - timedelta(days=self.rng.randint(1, 400))
            return "有效期至", "date.order"
        if variant == "fine_missing":
            record["fine_amount"] = None
            return "罚款金额(万元)", "fine.amount_required"
        # future_decision: a typo in the year or month puts the decision after today
        shift = self.today + timedelta(days=self.rng.randint(1, 60)) - record["decided_on"]
        record["decided_on"] += shift
        for name in ("valid_from", "valid_to", "publicity_end"):
            if record.get(name) is not None:
                record[name] += shift
        return ("许可决定日期" if kind == "license" else "处罚决定日期"), "date.future"

    # --- follow-ups of earlier records -------------------------------------------------------------------------

    def _follow_up(self, fault: str) -> Submission | None:
        kinds = ["license"] if fault == "objection" else self.rng.sample(["license", "penalty"], 2)
        history = next((self._history[k] for k in kinds if self._history[k]), None)
        if history is None:
            return None
        index = self.rng.randrange(len(history))
        earlier = history[index]
        kind = earlier.kind
        if fault == "duplicate":
            return replace(earlier, expect=DUPLICATE, fault="duplicate")
        record = dict(earlier.record)
        flags = set(earlier.flags) - {"objection", "update"}
        operation = "UPDATE"
        if fault == "update":
            flags.add("update")
            record["remarks"] = (
                f"第{earlier.version + 1}版：更正{'许可内容' if kind == 'license' else '违法事实'}"
            )
            text_field = "license_content" if kind == "license" else "violation_facts"
            record[text_field] = record[text_field] + "（已更正）"
        elif fault == "objection":
            flags.add("objection")
            record["status"] = "OBJECTION"
            record["remarks"] = "当事人提出异议，正在核查（D15）"
        else:  # revoke
            operation = "REVOKE"
            if kind == "license":
                record["status"] = "REVOKED"
            record["remarks"] = "行政许可决定已撤销" if kind == "license" else "处罚决定已被复议撤销"
        relay = self._relay(kind, record, earlier.department)
        item = replace(
            earlier,
            record=record,
            version=earlier.version + 1,
            operation=operation,
            expect=expected_outcome(operation, None, relay),
            relay=relay,
            flags=frozenset(flags),
            fault=fault,
        )
        if operation == "REVOKE":
            history[index] = history[-1]
            history.pop()
        else:
            history[index] = item
        return item


def expected_outcome(operation: str, fault: str | None, relay: dict[str, bool]) -> str:
    """Where a record should end up (D12, D4, and D11 as the rule book's `relay` says); reconciliation
    mismatches and lateness are flags, not outcomes: the record still travels, annotated."""
    if fault == "invalid":
        return REJECTED
    if fault == "duplicate":
        return DUPLICATE
    if operation == "REVOKE":
        return WITHDRAWN
    return RELAYED if NATIONAL in relay else PROVINCIAL_ONLY


def _wrong_check(code: str, alphabet: str) -> str:
    return code[:-1] + next(c for c in alphabet if c != code[-1])


__all__ = [
    "APPLIED",
    "DECISIONS",
    "DUPLICATE",
    "FAULTS",
    "PROVINCIAL_ONLY",
    "REJECTED",
    "RELAYED",
    "WITHDRAWN",
    "Decision",
    "FaultMix",
    "Generator",
    "Submission",
    "federation_population",
    "to_row",
]
