"""Template rows -> Avro-shaped records (D1, D2): columns, parsing, file reading, JSON form."""

from __future__ import annotations

import csv
import datetime
import json
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from sgs.domain.kinds import record_id
from sgs.domain.records import check_row, parse_envelope, parse_row, split_envelope, to_json
from sgs.domain.template import template_columns
from sgs.domain.template_files import TemplateError, read_rows
from sgs.domain.validation import validate
from sgs.serialization.codec import default_codec
from tests.support.paths import REPO

EXAMPLES = REPO / "docs" / "examples"
TODAY = datetime.date(2024, 12, 31)

# The national template's column order as issue 3 lists it; the schemas must keep to it.
COUNTERPART_COLUMNS = [
    "行政相对人名称", "行政相对人类别", "行政相对人代码_1(统一社会信用代码)", "行政相对人代码_2(工商注册号)",
    "行政相对人代码_3(组织机构代码)", "行政相对人代码_4(税务登记号)", "行政相对人代码_5(事业单位证书号)",
    "行政相对人代码_6(社会组织登记证号)", "法定代表人", "法定代表人证件类型", "法定代表人证件号码", "证件类型", "证件号码",
]  # fmt: skip
LICENCE_COLUMNS = COUNTERPART_COLUMNS + [
    "行政许可决定文书名称", "行政许可决定文书号", "许可类别", "许可证书名称", "许可编号", "许可内容", "许可决定日期",
    "有效期自", "有效期至", "许可机关", "许可机关统一社会信用代码", "当前状态", "数据来源单位",
    "数据来源单位统一社会信用代码", "备注",
]  # fmt: skip
PENALTY_COLUMNS = COUNTERPART_COLUMNS + [
    "行政处罚决定书文号", "违法行为类型", "违法事实", "处罚依据", "处罚类别", "处罚内容", "罚款金额(万元)",
    "没收违法所得、没收非法财物的金额(万元)", "暂扣或吊销证照名称及编号", "处罚决定日期", "处罚有效期", "公示截止期",
    "处罚机关", "处罚机关统一社会信用代码", "数据来源单位", "数据来源单位统一社会信用代码", "备注", "程序类型", "失信严重程度",
]  # fmt: skip


def example_rows(name: str) -> list[dict[str, str]]:
    with (EXAMPLES / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def penalty_row() -> dict[str, str]:
    return example_rows("penalty-valid.csv")[0]


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_template_columns_follow_the_national_template() -> None:
    assert template_columns("license") == LICENCE_COLUMNS
    assert template_columns("penalty") == PENALTY_COLUMNS


def test_record_id_is_kind_authority_and_document_number() -> None:
    assert (
        record_id("penalty", "113101010010100169", "沪罚〔2024〕1号")
        == "penalty:113101010010100169:沪罚〔2024〕1号"
    )


def test_parse_row_reads_chinese_columns_into_avro_types() -> None:
    body, issues = parse_row("penalty", penalty_row())
    assert issues == []
    assert body is not None
    assert body["counterpart"]["category"] == "LEGAL_PERSON"
    assert body["penalty_types"] == ["WARNING", "FINE"]  # "警告；罚款" with a full-width separator
    assert body["fine_amount"] == Decimal("1.5")
    assert body["decided_on"] == datetime.date(2024, 4, 1)
    assert body["confiscated_amount"] is None and body["remarks"] is None  # empty cells


def test_parse_row_accepts_avro_field_names_nested_or_flat() -> None:
    chinese, _ = parse_row("penalty", penalty_row())
    assert chinese is not None
    nested = dict(chinese)  # counterpart as a nested object
    assert parse_row("penalty", nested) == (chinese, [])
    flat = {**{k: v for k, v in chinese.items() if k != "counterpart"}, **chinese["counterpart"]}
    assert parse_row("penalty", flat) == (chinese, [])


def test_parse_row_accepts_both_date_forms_and_rejects_others() -> None:
    for text in ("2024-04-01", "2024/04/01", "2024/4/1"):
        body, issues = parse_row("penalty", {**penalty_row(), "处罚决定日期": text})
        assert issues == [] and body is not None and body["decided_on"] == datetime.date(2024, 4, 1)
    _, issues = parse_row("penalty", {**penalty_row(), "处罚决定日期": "2024.04.01"})
    assert [(i.field, i.rule) for i in issues] == [("处罚决定日期", "date.format")]
    _, issues = parse_row("penalty", {**penalty_row(), "处罚决定日期": "2024-04/01"})
    assert [i.rule for i in issues] == ["date.format"]
    _, issues = parse_row("penalty", {**penalty_row(), "处罚决定日期": "2023-02-29"})
    assert [i.rule for i in issues] == ["date.invalid"]


def test_parse_row_reads_enum_labels_and_symbols() -> None:
    body, issues = parse_row(
        "penalty", {**penalty_row(), "处罚类别": "FINE; 没收违法所得、没收非法财物", "程序类型": "SIMPLE"}
    )
    assert issues == [] and body is not None
    assert body["penalty_types"] == ["FINE", "CONFISCATION"] and body["procedure"] == "SIMPLE"
    _, issues = parse_row("penalty", {**penalty_row(), "处罚类别": "警告;;拘留"})
    assert [(i.field, i.rule) for i in issues] == [("处罚类别", "enum")]


def test_severity_takes_minor_as_well_as_general_and_serious() -> None:
    """Issue 15: 失信严重程度 轻微 (令第36号) is read, validated and encoded like 一般 and 严重."""
    for text, symbol in (("轻微", "MINOR"), ("一般", "GENERAL"), ("严重", "SERIOUS"), ("MINOR", "MINOR")):
        body, issues = check_row("penalty", {**penalty_row(), "失信严重程度": text}, today=TODAY)
        assert issues == [] and body is not None and body["severity"] == symbol
    _, issues = check_row("penalty", {**penalty_row(), "失信严重程度": "较重"}, today=TODAY)
    assert [(i.field, i.rule) for i in issues] == [("失信严重程度", "enum")]


def test_parse_row_reads_json_scalars() -> None:
    row = {**penalty_row(), "罚款金额(万元)": 2, "处罚类别": ["罚款"], "违法行为类型": 12345}
    body, issues = parse_row("penalty", row)
    assert issues == [] and body is not None
    assert (
        body["fine_amount"] == Decimal(2)
        and body["penalty_types"] == ["FINE"]
        and body["violation_type"] == "12345"
    )
    _, issues = parse_row("penalty", {**penalty_row(), "罚款金额(万元)": "一万"})
    assert [i.rule for i in issues] == ["amount.format"]
    _, issues = parse_row("penalty", {**penalty_row(), "罚款金额(万元)": True})
    assert [i.rule for i in issues] == ["amount.format"]


def test_unknown_columns_are_issues_and_envelope_is_ignored() -> None:
    body, issues = parse_row("penalty", {**penalty_row(), "经办人": "张三", "envelope": {"version": 1}})
    assert body is not None
    assert [(i.field, i.rule) for i in issues] == [("经办人", "column.unknown")]


def test_parse_row_without_a_mapping_gives_no_body() -> None:
    body, issues = parse_row("penalty", ["not", "a", "row"])  # type: ignore[arg-type]
    assert body is None and [i.rule for i in issues] == ["row.format"]


def test_check_row_reports_an_unreadable_cell_once() -> None:
    body, issues = check_row("penalty", {**penalty_row(), "处罚决定日期": "昨天"}, today=TODAY)
    assert body is not None
    assert [(i.field, i.rule) for i in issues] == [("处罚决定日期", "date.format")]


def test_parsed_valid_rows_validate_and_encode() -> None:
    for name, kind in (("license-valid.csv", "license"), ("penalty-valid.csv", "penalty")):
        for row in example_rows(name):
            body, issues = check_row(kind, row, today=TODAY)
            assert issues == [] and body is not None
            envelope = {
                "record_id": record_id(kind, body["authority_uscc"], body["decision_doc_no"]),
                "version": 1, "operation": "CREATE", "kind": kind.upper(), "source_node": "310101",
                "department": "scjg", "division_code": "310101", "decided_on": body["decided_on"],
                "submitted_at": datetime.datetime(2024, 12, 1, tzinfo=datetime.UTC), "receipt_id": "r1", "trace_id": "t1",
            }  # fmt: skip
            schema = "sgs.LicenseRecord" if kind == "license" else "sgs.PenaltyRecord"
            _, decoded = default_codec().decode(
                default_codec().encode(schema, {**body, "envelope": envelope})
            )
            assert validate(kind, decoded, today=TODAY) == []


def test_invalid_example_rows_all_have_issues() -> None:
    for name, kind in (("license-invalid.csv", "license"), ("penalty-invalid.csv", "penalty")):
        for row in example_rows(name):
            assert check_row(kind, row, today=TODAY)[1], row


def test_to_json_is_json_safe() -> None:
    body, _ = parse_row("penalty", penalty_row())
    data = to_json(body)
    assert json.loads(json.dumps(data)) == data
    assert (
        data["fine_amount"] == "1.5"
        and data["decided_on"] == "2024-04-01"
        and data["penalty_types"] == ["WARNING", "FINE"]
    )


def test_read_rows_csv_with_and_without_bom(tmp_path: Path) -> None:
    rows = [[r[c] for c in PENALTY_COLUMNS] for r in example_rows("penalty-valid.csv")]
    for encoding in ("utf-8", "utf-8-sig"):
        path = write_csv(tmp_path / f"{encoding}.csv", PENALTY_COLUMNS, rows, encoding)
        got = list(read_rows(path, "penalty"))
        assert [n for n, _, _ in got] == [2, 3, 4]
        assert all(issues == [] and body is not None for _, body, issues in got)


def test_read_rows_csv_counts_rows_as_an_editor_shows_them(tmp_path: Path) -> None:
    row = [penalty_row()[c] for c in PENALTY_COLUMNS]
    multiline = list(row)
    multiline[PENALTY_COLUMNS.index("违法事实")] = "第一行\n第二行"
    path = write_csv(tmp_path / "p.csv", PENALTY_COLUMNS, [multiline, [], row, row[:5]])
    got = list(read_rows(path, "penalty"))
    assert [n for n, _, _ in got] == [2, 5, 6]
    assert got[0][1] is not None and got[0][1]["violation_facts"] == "第一行\n第二行"
    assert "row.columns" in [i.rule for i in got[2][2]]


def test_the_optional_envelope_columns_are_read_and_checked_like_the_others(tmp_path: Path) -> None:
    """Issue 15: 版本号, 操作类型 and 公示时间 may follow the template columns; bad values are issues of their row."""
    columns = [*PENALTY_COLUMNS, "版本号", "操作类型", "公示时间"]
    good = [penalty_row()[c] for c in PENALTY_COLUMNS]
    path = write_csv(
        tmp_path / "p.csv",
        columns,
        [[*good, "2", "撤销", "2024-12-30T09:30:00"], [*good, "", "", ""], [*good, "二", "删除", "昨天"]],
    )
    got = list(read_rows(path, "penalty"))
    assert [issues for _, _, issues in got[:2]] == [[], []]
    assert got[0][1] is not None and "版本号" not in got[0][1]  # the body holds template fields only
    assert [i.rule for i in got[2][2]] == ["version.format", "operation.enum", "published_at.format"]
    assert split_envelope({"版本号": "2", "操作类型": "撤销", "公示时间": " ", "备注": "x"}) == (
        {"备注": "x"}, {"version": "2", "operation": "撤销"}
    )  # fmt: skip
    now = datetime.datetime(2026, 5, 6, 2, 0, tzinfo=datetime.UTC)
    version, operation, at, issues = parse_envelope({"version": 2.0, "operation": "撤销"}, now)
    assert (version, operation, at, issues) == (2, "REVOKE", None, [])
    assert parse_envelope({}, now)[:3] == (1, "CREATE", None)  # a file without the columns: version 1, 新增
    assert parse_envelope({"version": "3"}, now)[1] == "UPDATE"


def test_an_envelope_column_twice_is_a_header_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "p.csv", [*PENALTY_COLUMNS, "版本号", "version"], [])
    with pytest.raises(TemplateError, match="重复列"):
        list(read_rows(path, "penalty"))


def test_read_rows_header_in_any_order_is_accepted(tmp_path: Path) -> None:
    columns = list(reversed(PENALTY_COLUMNS))
    path = write_csv(tmp_path / "p.csv", columns, [[penalty_row()[c] for c in columns]])
    [(_, body, issues)] = list(read_rows(path, "penalty"))
    assert issues == [] and body is not None


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (PENALTY_COLUMNS[:-1], "缺少列"),
        (PENALTY_COLUMNS + ["经办人"], "未知列"),
        (PENALTY_COLUMNS + ["备注"], "重复列"),
        (LICENCE_COLUMNS, "表头与行政处罚模板不符"),
    ],
)
def test_read_rows_wrong_header_is_a_template_error(tmp_path: Path, header: list[str], message: str) -> None:
    path = write_csv(tmp_path / "p.csv", header, [["x"] * len(header)])
    with pytest.raises(TemplateError, match=message):
        list(read_rows(path, "penalty"))


def test_read_rows_gbk_csv_is_a_template_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gbk.csv", PENALTY_COLUMNS, [], encoding="gbk")
    with pytest.raises(TemplateError, match="UTF-8"):
        list(read_rows(path, "penalty"))


def test_read_rows_rejects_unknown_formats_and_missing_files(tmp_path: Path) -> None:
    png = tmp_path / "image.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(TemplateError, match="未知的文件格式"):
        list(read_rows(png, "penalty"))
    fake = tmp_path / "fake.xlsx"
    fake.write_text("not a workbook")
    with pytest.raises(TemplateError, match="XLSX"):
        list(read_rows(fake, "penalty"))
    with pytest.raises(TemplateError, match="无法读取"):
        list(read_rows(tmp_path / "missing.csv", "penalty"))
    with pytest.raises(TemplateError, match="为空"):
        list(read_rows(write_csv(tmp_path / "empty.csv", [], []), "penalty"))


def test_read_rows_xlsx_with_typed_cells(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(PENALTY_COLUMNS)
    row: list[object] = [penalty_row()[c] or None for c in PENALTY_COLUMNS]
    row[PENALTY_COLUMNS.index("处罚决定日期")] = datetime.datetime(2024, 4, 1)
    row[PENALTY_COLUMNS.index("罚款金额(万元)")] = 1.5
    ws.append(row)
    ws.append([None] * len(PENALTY_COLUMNS))  # trailing empty rows are not records
    path = tmp_path / "p.xlsx"
    wb.save(path)
    [(number, body, issues)] = list(read_rows(path, "penalty"))
    assert number == 2 and issues == [] and body is not None
    assert body["decided_on"] == datetime.date(2024, 4, 1) and body["fine_amount"] == Decimal("1.5")


def test_read_rows_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    good = json.dumps({**penalty_row(), "罚款金额(万元)": 1.5}, ensure_ascii=False)
    path.write_text(f"{good}\n\nnot json\n[1, 2]\n", encoding="utf-8")
    got = list(read_rows(path, "penalty"))
    assert [n for n, _, _ in got] == [1, 3, 4]
    assert got[0][2] == [] and got[0][1] is not None and got[0][1]["fine_amount"] == Decimal("1.5")
    assert got[1][1] is None and [i.rule for i in got[1][2]] == ["row.format"]
    assert got[2][1] is None


def test_template_doc_lists_every_column() -> None:
    doc = (REPO / "docs" / "template.md").read_text(encoding="utf-8")
    for column in LICENCE_COLUMNS + PENALTY_COLUMNS:
        assert f"| {column} |" in doc, column


def test_read_rows_zip_that_is_not_a_workbook_and_xlsx_with_wrong_header(tmp_path: Path) -> None:
    import zipfile

    not_workbook = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(not_workbook, "w") as z:
        z.writestr("hello.txt", "hello")
    with pytest.raises(TemplateError, match="XLSX"):
        list(read_rows(not_workbook, "penalty"))
    wb = openpyxl.Workbook()
    wb.active.append(LICENCE_COLUMNS)
    wrong = tmp_path / "licence.xlsx"
    wb.save(wrong)
    with pytest.raises(TemplateError, match="表头与行政处罚模板不符"):
        list(read_rows(wrong, "penalty"))
