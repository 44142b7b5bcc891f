"""Avro binary for the federation's schemas, compiled once per schema into plain Python (issue 14).

Why not fastavro alone: its writer spends about a microsecond a field on these machines, and picks a union's
branch by validating the value against each candidate in turn, so an annotated record (`["null",
"sgs.Annotations"]`) is validated whole before it is written; its reader is not much cheaper. Avro was the first
item of every process's profile (docs/bench.md). Our schemas use a small part of Avro: records, enums, arrays,
strings, bytes, ints, longs, booleans, unions of null and one type, and the date, timestamp-millis and decimal
logical types. Each schema is turned into one writer and one reader function of straight-line code, which write
and read what fastavro does, byte for byte (`tests/unit/serialization/test_compiled.py` checks every schema against
fastavro on random records). Logical types go through fastavro's own converters (`LOGICAL_WRITERS`,
`LOGICAL_READERS`), so a date or an amount means what it meant. A schema that uses anything else raises
`Unsupported`, and the codec keeps fastavro for it; so does reading a record written with another schema version.

A writer takes a record and returns its body; a reader takes bytes and a start offset and returns the record and
the offset after it. Both raise the exceptions of the Python operations they run (`KeyError`, `TypeError`,
`ValueError`, `IndexError`, ...): the codec turns them into `SerializationError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from fastavro.read import LOGICAL_READERS
from fastavro.write import LOGICAL_WRITERS

Writer = Callable[[dict[str, Any]], bytes]
Reader = Callable[[bytes, int], tuple[dict[str, Any], int]]

_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_BOOLEANS = (False, True)


class Unsupported(Exception):
    """A schema using a part of Avro this module does not compile: use fastavro for it."""


def _write_long(b: bytearray, n: Any) -> None:
    """Zigzag varint, as fastavro writes an int or a long (it raises on a value that is not an integer)."""
    if type(n) is not int:
        n = int(n.__index__())
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError(f"{n} does not fit a long")
    n = (n << 1) ^ (n >> 63)
    while n > 0x7F:
        b.append((n & 0x7F) | 0x80)
        n >>= 7
    b.append(n)


def _read_varint(d: bytes, p: int, first: int) -> tuple[int, int]:
    """The rest of a varint whose first byte (`first`, high bit set) was at p - 1; (zigzag value, next offset)."""
    n, shift = first & 0x7F, 7
    while True:
        byte = d[p]
        p += 1
        n |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return n, p
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than a long")


def _corrupt(what: str) -> Any:
    raise ValueError(what)


class _Compiler:
    """Emits the source of every record's writer and reader function; `compile` returns the top schema's pair."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = dict(named)  # full name -> definition (fastavro's parsed schemas list them)
        self.env: dict[str, Any] = {
            "_write_long": _write_long,
            "_read_varint": _read_varint,
            "_corrupt": _corrupt,
            "_BOOLEANS": _BOOLEANS,
        }
        self.sources: list[str] = []
        self.done: set[str] = set()
        self.names = itertools.count()

    def compile(self, schema: dict[str, Any]) -> tuple[Writer, Reader]:
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise Unsupported("only a record schema is compiled")
        self._record(schema)
        exec("\n".join(self.sources), self.env)  # noqa: S102 - code generated from our own schemas
        name = _ident(schema["name"])
        write, read = self.env[f"_w_{name}"], self.env[f"_r_{name}"]
        return (lambda record: bytes(write(bytearray(), record))), read

    def _named(self, t: Any) -> Any:
        """`t`, or the named type it refers to. A named type is written out at its first use and referred to by
        name after that; the compiler walks the schema in the same order, so it has met it first."""
        if isinstance(t, str):
            return self.named.get(t, t)
        if isinstance(t, dict) and "name" in t:
            self.named.setdefault(t["name"], t)
        return t

    def _const(self, value: Any) -> str:
        """A name in the generated code's globals bound to `value`."""
        name = f"_c{next(self.names)}"
        self.env[name] = value
        return name

    def _var(self) -> str:
        return f"v{next(self.names)}"

    def _record(self, schema: dict[str, Any]) -> str:
        """Emits `_w_<name>(b, d)` and `_r_<name>(d, p)` once per record type; returns the identifier."""
        name = _ident(schema["name"])
        if name in self.done:
            return name
        self.done.add(name)
        fields = schema["fields"]
        if not fields:
            raise Unsupported(f"{schema['name']}: a record with no field")
        write = [f"def _w_{name}(b, d):"]
        read = [f"def _r_{name}(d, p):"]
        values: list[str] = []
        for field in fields:
            ftype, fname = field["type"], field["name"]
            v = self._var()
            if "default" in field:
                write.append(f"    {v} = d.get({fname!r}, {self._const(field['default'])})")
            elif _nullable(ftype):
                write.append(f"    {v} = d.get({fname!r})")
            else:
                write.append(f"    {v} = d[{fname!r}]")
            write += self._write(ftype, v, "    ")
            read += self._read(ftype, v, "    ")
            values.append(f"{fname!r}: {v}")
        write.append("    return b")
        read.append(f"    return {{{', '.join(values)}}}, p")
        self.sources += ["\n".join(write), "\n".join(read)]
        return name

    def _write(self, t: Any, v: str, ind: str) -> list[str]:
        """Statements that append `v`, of Avro type `t`, to the bytearray `b`."""
        t = self._named(t)
        if isinstance(t, list):
            if len(t) != 2 or t[0] != "null":
                raise Unsupported(f"union {t}: only [null, T]")
            return [
                f"{ind}if {v} is None:",
                f"{ind}    b.append(0)",
                f"{ind}else:",
                f"{ind}    b.append(2)",
                *self._write(t[1], v, ind + "    "),
            ]
        if isinstance(t, dict):
            logical = t.get("logicalType")
            if logical is not None:
                key = f"{t['type']}-{logical}"
                if key not in LOGICAL_WRITERS or logical not in ("date", "timestamp-millis", "decimal"):
                    raise Unsupported(f"logical type {key}")
                prepared = self._var()
                prepare = self._const(LOGICAL_WRITERS[key])
                return [
                    f"{ind}{prepared} = {prepare}({v}, {self._const(t)})",
                    *self._write(t["type"], prepared, ind),
                ]
            kind = t["type"]
            if kind == "record":
                return [f"{ind}_w_{self._record(t)}(b, {v})"]
            if kind == "enum":
                index = self._const({symbol: i << 1 for i, symbol in enumerate(_symbols(t))})
                return [f"{ind}b.append({index}[{v}])"]
            if kind == "array":
                item = self._var()
                return [
                    f"{ind}if {v}:",
                    f"{ind}    _write_long(b, len({v}))",
                    f"{ind}    for {item} in {v}:",
                    *self._write(t["items"], item, ind + "        "),
                    f"{ind}b.append(0)",
                ]
            return self._write(kind, v, ind)
        if t == "string":
            s = self._var()
            return [
                f"{ind}{s} = {v}.encode()",
                f"{ind}if len({s}) < 64:",
                f"{ind}    b.append(len({s}) << 1)",
                f"{ind}else:",
                f"{ind}    _write_long(b, len({s}))",
                f"{ind}b += {s}",
            ]
        if t == "bytes":
            return [f"{ind}_write_long(b, len({v}))", f"{ind}b += {v}"]
        if t in ("int", "long"):
            return [f"{ind}_write_long(b, {v})"]
        if t == "boolean":
            return [f"{ind}b.append(1 if {v} else 0)"]
        raise Unsupported(f"type {t!r}")

    def _read(self, t: Any, v: str, ind: str) -> list[str]:
        """Statements that read a value of Avro type `t` at offset `p` of `d` into `v`, and move `p` past it. The
        writer of each field is compiled first, and refuses (`Unsupported`) what this does not read."""
        t = self._named(t)
        if isinstance(t, list):
            branch = self._var()
            return [
                f"{ind}{branch} = d[p]",
                f"{ind}p += 1",
                f"{ind}if {branch} == 0:",
                f"{ind}    {v} = None",
                f"{ind}elif {branch} == 2:",
                *self._read(t[1], v, ind + "    "),
                f"{ind}else:",
                f"{ind}    _corrupt('union branch out of range')",
            ]
        if isinstance(t, dict):
            logical = t.get("logicalType")
            if logical is not None:
                convert = self._const(LOGICAL_READERS[f"{t['type']}-{logical}"])
                schema = self._const(t)
                return [*self._read(t["type"], v, ind), f"{ind}{v} = {convert}({v}, {schema}, {schema})"]
            kind = t["type"]
            if kind == "record":
                return [f"{ind}{v}, p = _r_{self._record(t)}(d, p)"]
            if kind == "enum":
                symbols = self._const(_symbols(t))
                return [
                    f"{ind}{v} = {symbols}[d[p] >> 1] if d[p] & 1 == 0 else _corrupt('enum index')",
                    f"{ind}p += 1",
                ]
            if kind == "array":
                n, item, size = self._var(), self._var(), self._var()
                if t["items"] == "null":
                    raise Unsupported("an array of null")
                return [
                    f"{ind}{v} = []",
                    f"{ind}while True:",
                    *_read_long(n, ind + "    "),
                    f"{ind}    if {n} == 0:",
                    f"{ind}        break",
                    f"{ind}    if {n} < 0:",
                    f"{ind}        {n} = -{n}",
                    *_read_long(size, ind + "        "),
                    f"{ind}    if {n} > len(d) - p:",
                    f"{ind}        _corrupt('array longer than the message')",
                    f"{ind}    for _ in range({n}):",
                    *self._read(t["items"], item, ind + "        "),
                    f"{ind}        {v}.append({item})",
                ]
            return self._read(kind, v, ind)
        if t in ("string", "bytes"):
            n = self._var()
            return [
                *_read_long(n, ind),
                f"{ind}if {n} < 0 or p + {n} > len(d):",
                f"{ind}    _corrupt('length out of range')",
                f"{ind}{v} = d[p:p + {n}]{'.decode()' if t == 'string' else ''}",
                f"{ind}p += {n}",
            ]
        if t in ("int", "long"):
            return _read_long(v, ind)
        if t == "boolean":
            return [f"{ind}{v} = _BOOLEANS[d[p]]", f"{ind}p += 1"]
        raise Unsupported(f"type {t!r}")


def _read_long(v: str, ind: str) -> list[str]:
    """A zigzag varint at `p` into `v`: one byte inline, longer ones through `_read_varint`."""
    return [
        f"{ind}{v} = d[p]",
        f"{ind}p += 1",
        f"{ind}if {v} & 0x80:",
        f"{ind}    {v}, p = _read_varint(d, p, {v})",
        f"{ind}{v} = ({v} >> 1) ^ -({v} & 1)",
    ]


def _symbols(t: dict[str, Any]) -> tuple[str, ...]:
    """An enum's symbols; fewer than 64, so that an index is one byte (the generated code relies on it)."""
    if len(t["symbols"]) >= 64:
        raise Unsupported(f"enum {t['name']}: 64 symbols or more")
    return tuple(t["symbols"])


def _nullable(t: Any) -> bool:
    return isinstance(t, list) and "null" in t


def _ident(full_name: str) -> str:
    return full_name.replace(".", "_")


def compile_schema(schema: dict[str, Any]) -> tuple[Writer, Reader]:
    """(writer, reader) for a record schema parsed by fastavro (named types inlined at first use), or
    `Unsupported`."""
    return _Compiler(schema.get("__named_schemas", {})).compile(schema)
