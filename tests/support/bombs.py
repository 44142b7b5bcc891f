"""Upload bombs as a hostile department would send them (issue 17), built in seconds: a zip member whose content is
one chunk repeated is deflated once, with a full flush so that every repeat compresses to the same bytes, and those
bytes are repeated. The archive is real: inflating it gives the whole content, with the right CRC."""

from __future__ import annotations

import base64
import random
import struct
import zlib
from pathlib import Path

from sgs.domain.template import template_columns

_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_RELS = 'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"'
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _member(
    prefix: bytes, chunk: bytes = b"", repeats: int = 0, suffix: bytes = b""
) -> tuple[bytes, int, int]:
    """(deflated bytes, CRC-32, size) of prefix + chunk * repeats + suffix."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH) if repeats else b""
    tail = c.compress(suffix) + c.flush()
    crc = zlib.crc32(prefix)
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(suffix, crc)
    return head + block * repeats + tail, crc, len(prefix) + len(chunk) * repeats + len(suffix)


def write_zip(path: Path, members: dict[str, tuple[bytes, int, int]]) -> None:
    """A zip archive of deflated members (each under 4 GiB, so no zip64)."""
    out, central = bytearray(), bytearray()
    for name, (data, crc, size) in members.items():
        raw = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(data), size, len(raw), 0)
        out += raw + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(data), size, len(raw), 0, 0, 0, 0, 0,
            offset,
        )  # fmt: skip
        central += raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))


_NO_STRINGS = f'<?xml version="1.0" encoding="UTF-8"?><sst {_NS} count="0" uniqueCount="0"></sst>'.encode()


def _workbook(sheet: tuple[bytes, int, int], strings: tuple[bytes, int, int] | None = None) -> dict:
    types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
        'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType='
        '"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
    )
    rels = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships {_RELS}><Relationship Id="rId1" Type="{_DOC_RELS}/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    workbook = (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook {_NS} xmlns:r="{_DOC_RELS}"><sheets><sheet name="Sheet1" '
        'sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    workbook_rels = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships {_RELS}><Relationship Id="rId1" Type="{_DOC_RELS}/'
        'worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{_DOC_RELS}/sharedStrings" '
        'Target="sharedStrings.xml"/></Relationships>'
    ).replace("{_DOC_RELS}", _DOC_RELS)
    return {
        "[Content_Types].xml": _member(types.encode()),
        "_rels/.rels": _member(rels.encode()),
        "xl/workbook.xml": _member(workbook.encode()),
        "xl/_rels/workbook.xml.rels": _member(workbook_rels.encode()),
        "xl/worksheets/sheet1.xml": sheet,
        "xl/sharedStrings.xml": strings or _member(_NO_STRINGS),
    }


def _header_row(kind: str) -> bytes:
    cells = "".join(f'<c t="inlineStr"><is><t>{c}</t></is></c>' for c in template_columns(kind))
    return f'<row r="1">{cells}</row>'.encode()


def shared_strings_bomb(path: Path, kind: str, expands_to: int = 2 * 1024**3) -> None:
    """About 2 MB of XLSX whose shared strings expand to `expands_to` bytes (the 2 GiB of the issue)."""
    chunk = b"A" * (1 << 20)
    strings = _member(
        f'<?xml version="1.0" encoding="UTF-8"?><sst {_NS} count="1" uniqueCount="1"><si><t>'.encode(),
        chunk,
        expands_to // len(chunk),
        b"</t></si></sst>",
    )
    sheet = _member(
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet {_NS}><sheetData>'.encode()
        + _header_row(kind)
        + b'<row r="2"><c t="s"><v>0</v></c></row></sheetData></worksheet>'
    )
    write_zip(path, _workbook(sheet, strings))


def long_cell_bomb(path: Path, kind: str, cell_bytes: int = 100 * 1024 * 1024) -> None:
    """An XLSX whose one cell holds `cell_bytes` of letters that hardly compress (about 75 MB): under every size and
    ratio bound of the archive, only the cell's own length gives it away."""
    block = base64.b64encode(random.Random(17).randbytes(768 * 1024))  # 1 MiB of text deflating to ~0.77 MiB
    sheet = _member(
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet {_NS}><sheetData>'.encode()
        + _header_row(kind)
        + b'<row r="2"><c t="inlineStr"><is><t>',
        block,
        cell_bytes // len(block),
        b"</t></is></c></row></sheetData></worksheet>",
    )
    write_zip(path, _workbook(sheet))


def empty_rows_bomb(path: Path, kind: str, rows: int = 70_000_000) -> None:
    """A few hundred KB of XLSX holding `rows` empty rows after its header (the 70 million of the issue)."""
    per_chunk = 100_000
    sheet = _member(
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet {_NS}><sheetData>'.encode() + _header_row(kind),
        b"<row/>" * per_chunk,
        rows // per_chunk,
        b"</sheetData></worksheet>",
    )
    write_zip(path, _workbook(sheet))


def entity_bomb(path: Path, kind: str) -> None:
    """A billion-laughs worksheet: XML entities that expand exponentially."""
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    sheet = (
        f'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY l0 "ha">{laughs}]><worksheet {_NS}><sheetData>'
        f'<row r="1"><c t="inlineStr"><is><t>&l9;</t></is></c></row></sheetData></worksheet>'
    )
    write_zip(path, _workbook(_member(sheet.encode())))


def long_line_csv(path: Path, kind: str, line_bytes: int = 50 * 1024 * 1024) -> None:
    """A template CSV whose one data line is `line_bytes` long (the 50 MiB of the issue)."""
    with path.open("wb") as out:
        out.write(",".join(template_columns(kind)).encode("utf-8-sig") + b"\n")
        chunk = b"x" * (1 << 20)
        for _ in range(line_bytes // len(chunk)):
            out.write(chunk)
        out.write(b"\n")
