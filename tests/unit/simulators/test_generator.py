"""The simulators' generator: deterministic, valid codes, records that pass (or fail exactly as intended) the shared
validator, fault fractions as asked, and expectations that agree with the rules that decide them."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from stdnum.cn import ric, uscc

from sgs.config import Federation
from sgs.domain.lifecycle import OBJECTION_OPEN, WITHDRAWAL_REASON, parse_decision, repair_refusal
from sgs.domain.reconciliation import reconcile
from sgs.domain.records import check_row
from sgs.domain.template_files import read_rows
from sgs.domain.validation import validate
from sgs.domain.workdays import Calendar
from sgs.refbase.load import read_csv
from sgs.refbase.store import LEGAL_PERSONS, PERSONS
from simulators.files import LEGAL_PERSONS_CSV, PERSONS_CSV, TemplateFiles, write_refbase
from simulators.generator import (
    APPLIED,
    DECISIONS,
    DUPLICATE,
    FAULTS,
    PROVINCIAL_ONLY,
    REJECTED,
    RELAYED,
    WITHDRAWN,
    FaultMix,
    Generator,
    federation_population,
)

TODAY = date(2026, 10, 16)  # after 国庆: the 7 working days of D5 span the holiday and its 调休 Saturday


@pytest.fixture(scope="module")
def items(federation: Federation) -> list:
    return list(Generator(federation, seed=42, today=TODAY).take(6000))


def test_same_seed_gives_the_same_stream_and_another_seed_does_not(federation: Federation) -> None:
    def stream(seed: int) -> list:
        return [
            (i.record_id, i.version, i.expect, i.record, i.decisions)
            for i in Generator(federation, seed, today=TODAY).take(1000)
        ]

    assert stream(7) == stream(7)
    assert stream(7) != stream(8)


def test_every_generated_code_passes_python_stdnum(federation: Federation, items: list) -> None:
    population = federation_population(federation)
    for subject in population.organisations():
        uscc.validate(subject.uscc)
    for person in population.persons():
        ric.validate(person.id_no)
    for item in items:
        if item.expect == REJECTED:
            continue
        cp = item.record["counterpart"]
        if cp["uscc"]:
            uscc.validate(cp["uscc"])
        for number in (cp["id_no"], cp["legal_rep_id_no"]):
            if number:
                ric.validate(number)
        uscc.validate(item.record["authority_uscc"])


def test_uscc_carries_the_district_and_a_valid_organisation_code(federation: Federation) -> None:
    from sgs.domain.identifiers import org_code_check_char

    population = federation_population(federation)
    for (district, _), companies in population.legal.items():
        for company in companies:
            assert company.uscc[:2] == "91" and company.uscc[2:8] == district
            assert org_code_check_char(company.uscc[8:16]) == company.uscc[16]
    for shops in population.shops.values():
        assert all(shop.uscc[:2] == "92" for shop in shops)


def test_clean_records_pass_validation_as_records_and_as_template_rows(
    items: list, federation: Federation
) -> None:
    for item in items:
        if item.expect == REJECTED:
            continue
        # with the rule book, as the node checks them: no 公示截止期 beyond the tier's longest (issue 15, 17)
        assert validate(item.kind, item.record, today=TODAY, rules=federation.rules) == [], item.record
        body, issues = check_row(item.kind, item.row(), today=TODAY)
        assert issues == []
        assert body == item.record  # the row is the record, column for column


def test_invalid_records_fail_with_the_intended_rule(items: list) -> None:
    invalid = [i for i in items if i.expect == REJECTED]
    assert invalid
    rules = Counter()
    for item in invalid:
        for issues in (
            validate(item.kind, item.record, today=TODAY),
            check_row(item.kind, item.row(), today=TODAY)[1],
        ):
            assert item.expected_issue in [(i.field, i.rule) for i in issues], (item.expected_issue, issues)
        rules[item.expected_issue[1]] += 1
    assert {"required", "uscc.check_char", "date.future"} <= set(rules)


def test_fault_fractions_are_respected_within_tolerance(federation: Federation) -> None:
    mix = FaultMix(late=0.1, invalid=0.05, name_mismatch=0.04, unknown_code=0.03, deregistered=0.02,
                   duplicate=0.03, update=0.05, revoke=0.02, objection=0.02, objection_taken_down=0.02,
                   objection_kept=0.01, repaired=0.02, repair_refused=0.01)  # fmt: skip
    n = 20_000
    faults = Counter(i.fault for i in Generator(federation, seed=3, faults=mix, today=TODAY).take(n))
    for name in FAULTS:
        expected = getattr(mix, name) * n
        assert abs(faults[name] - expected) < 4 * expected**0.5 + 10, (name, faults[name], expected)


def test_no_faults_means_every_record_travels(federation: Federation) -> None:
    items = list(Generator(federation, seed=5, faults=FaultMix.none(), today=TODAY).take(2000))
    assert {i.expect for i in items} <= {RELAYED, PROVINCIAL_ONLY}
    assert all(i.fault is None and not i.flags for i in items)


def test_fault_fractions_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="sum"):
        FaultMix(late=0.6, invalid=0.5)
    with pytest.raises(ValueError, match="outside"):
        FaultMix(late=-0.1)


def test_late_items_are_past_the_d5_limit_on_the_official_calendar(
    federation: Federation, items: list
) -> None:
    calendar = Calendar()
    limit = federation.timeliness.publish_working_days
    late = [i for i in items if "late" in i.flags and i.expect != REJECTED]
    assert late
    for item in items:
        if item.expect == REJECTED:
            continue
        days, _ = calendar.working_days_between(item.decided_on, TODAY)
        assert days == item.working_days
        assert (days > limit) == ("late" in item.flags), (item.decided_on, days)
    # Issue 5's example: decided 2026-09-30, submitted 2026-10-15 is on time (国庆 1-7 October are off).
    by_days = Generator(federation, seed=1, today=date(2026, 10, 15)).by_working_days
    assert date(2026, 9, 30) in by_days[limit] and date(2026, 10, 4) in by_days[limit]
    assert by_days[limit + 1] == [date(2026, 9, 29)]


def test_reconciliation_flags_agree_with_the_reference_snapshot(
    federation: Federation, items: list, tmp_path: Path
) -> None:
    write_refbase(federation_population(federation), tmp_path)
    legal = {r.row["uscc"]: r.row for r in read_csv(LEGAL_PERSONS, tmp_path / LEGAL_PERSONS_CSV) if r.row}
    people = {r.row["id_no"]: r.row for r in read_csv(PERSONS, tmp_path / PERSONS_CSV) if r.row}
    assert all(r.reasons == [] for r in read_csv(LEGAL_PERSONS, tmp_path / LEGAL_PERSONS_CSV))
    assert all(r.reasons == [] for r in read_csv(PERSONS, tmp_path / PERSONS_CSV))
    expected = {
        "name_mismatch": "NAME_MISMATCH",
        "unknown_code": "UNKNOWN_CODE",
        "deregistered": "DEREGISTERED",
    }
    outcomes = Counter()
    for item in items:
        if item.expect == REJECTED:
            continue
        outcome, _ = reconcile(item.record["counterpart"], item.decided_on, legal, people)
        flagged = [expected[f] for f in item.flags if f in expected]
        assert outcome == (flagged[0] if flagged else "MATCHED"), (item.flags, item.record["counterpart"])
        outcomes[outcome] += 1
    assert set(outcomes) == {"MATCHED", "NAME_MISMATCH", "UNKNOWN_CODE", "DEREGISTERED"}


def test_expectations_follow_the_publication_and_lifecycle_rules(items: list) -> None:
    latest: dict[str, int] = {}
    for item in items:
        record = item.record
        if item.expect == REJECTED:
            continue
        if item.expect == DUPLICATE:
            assert latest[item.record_id] == item.version  # the same version again
            continue
        if item.version > 1:
            assert latest[item.record_id] == item.version - 1  # D4: one version up from the last one sent
        latest[item.record_id] = item.version
        if item.operation == "REVOKE":
            assert item.expect == WITHDRAWN
        elif item.kind == "penalty" and (
            record["procedure"] == "SIMPLE" or record["counterpart"]["category"] == "NATURAL_PERSON"
        ):
            assert item.expect == PROVINCIAL_ONLY  # D11
        else:
            assert item.expect == RELAYED
        if "objection" in item.flags:
            assert item.kind == "license" and record["status"] == "OBJECTION"  # D15
    expects = Counter(i.expect for i in items)
    assert set(expects) == {RELAYED, PROVINCIAL_ONLY, REJECTED, DUPLICATE, WITHDRAWN}


def test_simple_procedure_penalties_are_warnings_or_small_fines(items: list) -> None:
    simple = [i.record for i in items if i.kind == "penalty" and i.record["procedure"] == "SIMPLE"]
    assert simple and {r["severity"] for r in simple} == {"GENERAL", "MINOR"}
    for record in simple:
        assert set(record["penalty_types"]) <= {"WARNING", "FINE"}
        assert record["severity"] in ("GENERAL", "MINOR")  # a department may call it 轻微 (令第36号)
        if record["fine_amount"] is not None:  # 行政处罚法 第五十一条: 200 元 for persons, 3,000 元 otherwise
            assert record["fine_amount"] <= (
                0.02 if record["counterpart"]["category"] == "NATURAL_PERSON" else 0.3
            )


def test_template_files_read_back_as_the_generated_records(federation: Federation, tmp_path: Path) -> None:
    items = list(Generator(federation, seed=9, today=TODAY, districts=["310106"]).take(300))
    files = TemplateFiles(tmp_path, "xlsx")
    files.add_all(items)
    paths = files.close()
    assert {p.name.rsplit("-", 1)[0] for p in paths} <= {d.id for d in federation.node("310106").departments}
    read = {}
    for path in paths:
        kind = path.stem.rsplit("-", 1)[1]
        for number, body, issues in read_rows(path, kind):
            assert issues == []
            read[path.name, number] = body
    manifest = (tmp_path / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(manifest) == len(items)
    import json

    for line, item in zip(manifest, items, strict=True):
        entry = json.loads(line)
        assert entry["record_id"] == item.record_id and entry["expect"] == item.expect
        if item.expect != REJECTED:
            assert read[entry["file"], entry["row"]] == item.record


def test_districts_limit_the_departments_and_unknown_ones_are_refused(federation: Federation) -> None:
    items = list(Generator(federation, seed=2, districts=["310115", "310000"], today=TODAY).take(500))
    assert {i.node for i in items} == {"310115", "310000"}
    with pytest.raises(ValueError, match="unknown district"):
        Generator(federation, districts=["999999"])


def _with_decisions(items: list) -> dict[str, list]:
    by_fault: dict[str, list] = {name: [] for name in DECISIONS}
    for item in items:
        if item.decisions:
            by_fault[item.fault].append(item)
    assert all(by_fault.values()), {k: len(v) for k, v in by_fault.items()}
    return by_fault


def test_decisions_are_ones_a_node_takes_on_the_record_dated_after_it_and_never_after_today(
    items: list,
) -> None:
    for item in (i for group in _with_decisions(items).values() for i in group):
        assert item.expect in (RELAYED, PROVINCIAL_ONLY)  # the record itself travels
        previous = item.decided_on
        for decision in item.decisions:
            body, issues = parse_decision(decision.http_body(), TODAY)  # the node's own parser (D12)
            assert issues == [] and body is not None
            assert (
                body["record_id"] == item.record_id
                and body["authority_uscc"] == item.record["authority_uscc"]
            )
            assert previous <= decision.decided_on <= TODAY
            previous = decision.decided_on


def test_objections_are_raised_then_upheld_or_kept(items: list) -> None:
    by_fault = _with_decisions(items)
    for fault, outcome in (
        ("objection_taken_down", "OBJECTION_TAKEN_DOWN"),
        ("objection_kept", "OBJECTION_KEPT"),
    ):
        for item in by_fault[fault]:
            assert [d.decision for d in item.decisions] == ["OBJECTION_RAISED", outcome]  # D15
            assert all(d.expect == APPLIED for d in item.decisions)
    assert WITHDRAWAL_REASON["OBJECTION_TAKEN_DOWN"] and OBJECTION_OPEN["OBJECTION_KEPT"] is False


def test_repairs_are_expected_as_sgs_lifecycle_decides_them(federation: Federation, items: list) -> None:
    """D16 through the worker's own functions and rule book: an approved repair is admissible and the penalty
    still shown on the day (D14), a refused one fails with the rule the item expects. Repairs of penalties decided
    since 2026-04-01 are judged by 令第36号, under which a 严重 penalty is repairable after a year: too early here."""
    by_fault = _with_decisions(list(Generator(federation, seed=11, today=TODAY).take(20_000)))
    refusals = Counter()
    for fault in ("repaired", "repair_refused"):
        for item in by_fault[fault]:
            (decision,) = item.decisions
            record = item.record
            assert item.kind == "penalty" and decision.decision == "REPAIR_APPROVED"
            ruling = federation.rules.ruling(item.kind, record, item.department.id)
            refusal = repair_refusal(ruling, decision.decided_on)
            assert (refusal.rule if refusal else APPLIED) == decision.expect, (record, decision)
            assert (fault == "repaired") == (decision.expect == APPLIED)
            refusals[decision.expect] += 1
            if fault == "repaired":
                assert record["publicity_end"] >= TODAY  # not expired before the repair could take it down
                assert "late" in item.flags  # decided months ago, submitted today
            if decision.expect != APPLIED and record["severity"] == "SERIOUS":
                assert decision.expect == "repair.too_early" and ruling.rule_set == "ndrc-order-36"
    assert set(refusals) == {APPLIED, "repair.too_early"}


def test_at_most_one_repair_per_subject_and_records_with_decisions_are_never_followed_up(
    federation: Federation,
) -> None:
    """The worker may refuse a penalty decided within a year after a repair of the same subject (D16): one repair
    decision per subject keeps every expectation right whether it does or not. A later version of a record
    with decisions would race them, so none is generated."""
    items = list(Generator(federation, seed=12, today=TODAY).take(20_000))
    repaired = [i.record["counterpart"] for i in items if i.fault in ("repaired", "repair_refused")]
    codes = [cp["uscc"] or cp["id_no"] for cp in repaired]
    assert len(codes) == len(set(codes)) > 100
    decided = {i.record_id for i in items if i.decisions}
    assert Counter(i.record_id for i in items if i.record_id in decided) == Counter(decided)
