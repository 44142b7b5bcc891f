"""The legal-person base (法人库) and population base (人口库): names, the D13 check, CSV rows, the store."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from stdnum.cn import ric, uscc

from sgs.domain.reconciliation import normalise_name, reconcile
from sgs.refbase.load import parse_legal_person, parse_person, read_csv
from sgs.refbase.publisher import PublishError
from sgs.refbase.store import LEGAL_PERSONS, PERSONS, BaseSpec, RefBase, RefbaseError
from sgs.serialization.codec import default_codec


def make_uscc(n: int) -> str:
    body = f"91310000MA{n:07d}"
    return body + uscc.calc_check_digit(body)


def make_id_no(n: int) -> str:
    body = f"31010119900101{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


CODE = make_uscc(1)
PERSON = make_id_no(17)


def legal(name: str, status: str = "ACTIVE", since: date | None = None) -> dict[str, Any]:
    return {"uscc": CODE, "name": name, "status": status, "status_since": since, "updated_at": None}


def counterpart(name: str, category: str = "LEGAL_PERSON", **codes: str) -> dict[str, Any]:
    return {"name": name, "category": category, "uscc": CODE, "id_no": None, **codes}


DECIDED = date(2026, 5, 20)


# ---------------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("written", "registered"),
    [
        ("上海某某贸易有限公司（浦东）", "上海某某贸易有限公司(浦东)"),
        ("上海某某贸易有限公司【浦东】", "上海某某贸易有限公司（浦东）"),
        ("上海某某贸易有限公司[浦东]", "上海某某贸易有限公司(浦东)"),
        ("上海 某某 贸易有限公司", "上海某某贸易有限公司"),
        ("上海\u3000某某贸易有限公司", "上海某某贸易有限公司"),
        ("ＡＢＣ科技（上海）有限公司", "abc科技(上海)有限公司"),
        ("Abc Tech (Shanghai) Co., Ltd.", "ABC TECH(SHANGHAI)CO.,LTD."),
    ],
)
def test_names_differing_only_in_width_brackets_spaces_or_case_compare_equal(
    written: str, registered: str
) -> None:
    """D13: the name matches the registered name after normalising full/half width, brackets and spaces."""
    assert normalise_name(written) == normalise_name(registered)


def test_names_differing_in_a_character_stay_different() -> None:
    """D13: normalising must not hide a real difference."""
    assert normalise_name("上海某某贸易有限公司") != normalise_name("上海某某商贸有限公司")


# ---------------------------------------------------------------------------------------------------- D13


def test_registered_entity_with_matching_name_is_matched() -> None:
    """D13: code exists, name matches after normalisation, not deregistered."""
    base = {CODE: legal("上海某某贸易有限公司（浦东）")}
    assert reconcile(counterpart("上海某某贸易有限公司(浦东)"), DECIDED, base, {}) == (
        "MATCHED",
        "上海某某贸易有限公司（浦东）",
    )


def test_different_name_is_a_name_mismatch_with_the_registered_name() -> None:
    """D13: the registered name is returned so the alert can show both."""
    base = {CODE: legal("上海某某贸易有限公司")}
    assert reconcile(counterpart("上海某某商贸有限公司"), DECIDED, base, {}) == (
        "NAME_MISMATCH",
        "上海某某贸易有限公司",
    )


def test_code_absent_from_the_base_is_unknown() -> None:
    """D13: the code must exist in the legal-person base."""
    assert reconcile(counterpart("上海某某贸易有限公司"), DECIDED, {}, {}) == ("UNKNOWN_CODE", None)


def test_record_without_a_uscc_is_unknown_code() -> None:
    """D13: the base is keyed by 统一社会信用代码; a transition-period code alone cannot be checked."""
    cp = counterpart("上海某某贸易有限公司", uscc=None, org_code="12345678-9")  # type: ignore[arg-type]
    assert reconcile(cp, DECIDED, {CODE: legal("上海某某贸易有限公司")}, {}) == ("UNKNOWN_CODE", None)


@pytest.mark.parametrize("status", ["DEREGISTERED", "REVOKED"])
@pytest.mark.parametrize("since", [date(2026, 5, 20), date(2025, 1, 1)])
def test_entity_deregistered_or_revoked_on_or_before_the_decision_is_deregistered(
    status: str, since: date
) -> None:
    """D13: not deregistered (注销) or revoked (吊销) at the decision date; that outranks a name mismatch."""
    base = {CODE: legal("上海某某贸易有限公司", status, since)}
    assert reconcile(counterpart("别的名字"), DECIDED, base, {})[0] == "DEREGISTERED"


def test_entity_deregistered_after_the_decision_was_registered_when_decided() -> None:
    """D13 is judged at the decision date: a later deregistration does not taint the record."""
    base = {CODE: legal("上海某某贸易有限公司", "DEREGISTERED", date(2026, 5, 21))}
    assert reconcile(counterpart("上海某某贸易有限公司"), DECIDED, base, {})[0] == "MATCHED"


def test_deregistration_without_a_date_counts_as_before_the_decision() -> None:
    """D13: an undated 注销 cannot prove the entity was registered when decided."""
    base = {CODE: legal("上海某某贸易有限公司", "DEREGISTERED", None)}
    assert reconcile(counterpart("上海某某贸易有限公司"), DECIDED, base, {})[0] == "DEREGISTERED"


def test_individual_business_is_checked_in_the_legal_person_base() -> None:
    """D13: 个体工商户 carry a 统一社会信用代码 and live in the legal-person base."""
    base = {CODE: legal("上海市浦东新区张三小吃店")}
    cp = counterpart("上海市浦东新区张三小吃店", "INDIVIDUAL_BUSINESS")
    assert reconcile(cp, DECIDED, base, {})[0] == "MATCHED"


def test_natural_person_is_checked_in_the_population_base_by_id_number() -> None:
    """D13: a natural person's 证件号码 exists in 人口库 and the name matches; the legal-person base is not used."""
    people = {PERSON: {"id_no": PERSON, "name": "张三", "updated_at": None}}
    cp = counterpart("张 三", "NATURAL_PERSON", uscc=None, id_no=PERSON.lower())  # type: ignore[arg-type]
    assert reconcile(cp, DECIDED, {CODE: legal("张三")}, people) == ("MATCHED", "张三")
    cp["name"] = "李四"
    assert reconcile(cp, DECIDED, {}, people) == ("NAME_MISMATCH", "张三")
    cp["id_no"] = make_id_no(18)
    assert reconcile(cp, DECIDED, {}, people) == ("UNKNOWN_CODE", None)


def test_reconcile_reads_decoded_change_stream_records() -> None:
    """The workers hold decoded `sgs.LegalPerson` records: the check works on exactly those."""
    from datetime import UTC, datetime

    record = {**legal("上海某某贸易有限公司", "REVOKED", date(2026, 1, 2)), "updated_at": datetime.now(UTC)}
    _, decoded = default_codec().decode(default_codec().encode("sgs.LegalPerson", record))
    assert reconcile(counterpart("上海某某贸易有限公司"), DECIDED, {CODE: decoded}, {})[0] == "DEREGISTERED"


# ---------------------------------------------------------------------------------------------------- CSV


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8-sig")
    return path


def test_legal_person_csv_accepts_chinese_status_labels_and_reports_bad_rows(tmp_path: Path) -> None:
    """D13 base rows: 存续/注销/吊销 map to the RegistrationStatus symbols; a bad row is data with reasons."""
    path = write(
        tmp_path / "lp.csv",
        "统一社会信用代码,名称,登记状态,状态日期\n"
        f"{CODE.lower()},上海某某贸易有限公司,存续,\n"
        f"{make_uscc(2)},上海某某物流有限公司,注销,2024/03/01\n"
        f"{make_uscc(3)},上海某某餐饮有限公司,吊销,20250102\n"
        f"{CODE[:-1]}0,坏代码公司,存续,\n"
        f"{make_uscc(4)},,歇业,2024-13-01\n",
    )
    rows = list(read_csv(LEGAL_PERSONS, path))
    assert [r.row["status"] for r in rows[:3] if r.row] == ["ACTIVE", "DEREGISTERED", "REVOKED"]
    assert rows[0].row and rows[0].row["uscc"] == CODE
    assert rows[1].row and rows[1].row["status_since"] == date(2024, 3, 1)
    assert rows[2].row and rows[2].row["status_since"] == date(2025, 1, 2)
    assert rows[3].row is None and rows[3].line == 5 and "统一社会信用代码" in rows[3].reasons[0]
    assert rows[4].row is None and len(rows[4].reasons) == 3


def test_person_csv_rejects_bad_id_numbers_without_echoing_them(tmp_path: Path) -> None:
    """D3 (GB 11643 check character) and D17 (the full number is never written to a log)."""
    bad = PERSON[:-1] + ("0" if PERSON[-1] != "0" else "1")
    path = write(tmp_path / "p.csv", f"身份证号,姓名\n{PERSON},张三\n{bad},李四\n")
    good, wrong = list(read_csv(PERSONS, path))
    assert good.row == {"id_no": PERSON, "name": "张三"}
    assert wrong.row is None and bad not in wrong.reasons[0]


def test_csv_without_a_required_header_is_refused_naming_it(tmp_path: Path) -> None:
    """A file that is not a base file fails as a whole, before anything is stored."""
    path = write(tmp_path / "lp.csv", "统一社会信用代码,名称\n")
    with pytest.raises(RefbaseError, match="登记状态"):
        list(read_csv(LEGAL_PERSONS, path))


# ---------------------------------------------------------------------------------------------------- the store


class Recorder:
    """A real publish callable that keeps what it was given (the broker path is the integration test's)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail

    def __call__(self, spec: BaseSpec, records: list[dict[str, Any]]) -> None:
        if self.fail:
            raise PublishError("broker down")
        for r in records:
            default_codec().encode(spec.schema, r)  # what is published must fit the schema
        self.sent.extend(records)


def row(code: str, name: str, status: str = "ACTIVE", since: date | None = None) -> dict[str, Any]:
    return {"uscc": code, "name": name, "status": status, "status_since": since}


def check_upsert_publishes_only_changes(base: RefBase) -> None:
    first = Recorder()
    counts = base.upsert(LEGAL_PERSONS, [row(make_uscc(10), "甲公司"), row(make_uscc(11), "乙公司")], first)
    assert (counts.inserted, counts.updated, counts.unchanged, counts.published) == (2, 0, 0, 2)
    assert {r["uscc"] for r in first.sent} == {make_uscc(10), make_uscc(11)}

    again = Recorder()
    rows = [row(make_uscc(10), "甲公司"), row(make_uscc(11), "乙公司", "DEREGISTERED", date(2026, 3, 1))]
    counts = base.upsert(LEGAL_PERSONS, rows, again)
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 1)
    assert [(r["uscc"], r["status"], r["status_since"]) for r in again.sent] == [
        (make_uscc(11), "DEREGISTERED", date(2026, 3, 1))
    ]
    stored = base.get(LEGAL_PERSONS, make_uscc(11))
    assert stored and stored["status"] == "DEREGISTERED" and stored["updated_at"].tzinfo is not None

    with pytest.raises(PublishError):
        base.upsert(LEGAL_PERSONS, [row(make_uscc(10), "甲公司（改名）")], Recorder(fail=True))
    assert base.get(LEGAL_PERSONS, make_uscc(10))["name"] == "甲公司"  # type: ignore[index]

    people = Recorder()
    counts = base.upsert(PERSONS, [{"id_no": PERSON, "name": "张三"}], people)
    assert counts.inserted == 1 and people.sent[0]["id_no"] == PERSON
    assert base.upsert(PERSONS, [{"id_no": PERSON, "name": "张三"}], people).unchanged == 1

    everything = [r for batch in base.batches(LEGAL_PERSONS, size=1) for r in batch]
    assert [r["uscc"] for r in everything] == sorted([make_uscc(10), make_uscc(11)])
    assert base.count(LEGAL_PERSONS) == 2


def test_sqlite_upsert_stores_and_publishes_only_changed_rows(data_dir: Path) -> None:
    """D13 change stream: new and changed rows are published, unchanged rows are not, and a broker failure
    rolls the batch back so a rerun publishes it (real SQLite file)."""
    with RefBase(f"sqlite:///{data_dir}/refbase.db") as base:
        check_upsert_publishes_only_changes(base)
    assert (data_dir / "refbase.db").exists()


@pytest.mark.postgres
def test_postgresql_upsert_stores_and_publishes_only_changed_rows(
    postgres_url: str, postgres_schema: str
) -> None:
    """The same contract on PostgreSQL, the deployment store."""
    with RefBase(postgres_url, schema=postgres_schema) as base:
        check_upsert_publishes_only_changes(base)


def test_unusable_store_url_is_a_refbase_error() -> None:
    """Library errors are wrapped at the boundary."""
    with pytest.raises(RefbaseError):
        RefBase("nosuchdb://x")


def test_a_name_too_long_for_a_message_or_with_a_control_character_is_an_invalid_row() -> None:
    """Issue 17: every entry a base holds can be published, so none is refused by the broker later."""
    _, reasons = parse_legal_person({"uscc": "91310115MA1K4CQ00X", "name": "某" * 5001, "status": "存续"})
    assert any("[text.too_long]" in r for r in reasons)
    row, reasons = parse_person({"id_no": "11010519491231002X", "name": "张\x00三"})
    assert row is None and any("[text.control]" in r for r in reasons)


def test_a_cell_over_the_csv_field_limit_is_a_refbase_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "legal.csv"
    path.write_text(
        "统一社会信用代码,名称,登记状态\n" + "x," + '"' + "某" * 200_000 + '"' + ",存续\n", encoding="utf-8"
    )
    with pytest.raises(RefbaseError, match="line"):
        list(read_csv(LEGAL_PERSONS, path))
