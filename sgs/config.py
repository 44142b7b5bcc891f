"""The federation config: the tree of nodes and departments, the sinks, the timeliness rules and the stores.

Loaded from one TOML file and checked on load; every problem is a `ConfigError` naming the file and the key.
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgs.domain.rulebook import DEFAULT_RULE_BOOK, TIERS, RuleBook, RuleBookError, floor_from_config
from sgs.tokens import check_hash_format, dev_token

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "federation.toml"
_DIVISION = re.compile(r"^\d{6}$")
_USCC = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the key."""

    def __init__(self, path: Path, key: str, message: str) -> None:
        super().__init__(f"{path}: {key}: {message}")


@dataclass(frozen=True)
class Department:
    """A deciding body (委办局 or 区级部门) that submits through one node."""

    id: str  # "<node code>-<key>", stable, used in metrics labels and receipts
    key: str
    name: str
    node: str
    uscc: str  # the authority's 统一社会信用代码: records it submits must carry it (issue 4, D10)
    token_hash: str | None  # scrypt hash of its upload token (sgs.tokens); None: only its development token

    @property
    def dev_token(self) -> str:
        """The well-known token a development run (`sgs up`, `--dev`) accepts for this department."""
        return dev_token(self.id)


@dataclass(frozen=True)
class Node:
    """A district node (区县信用子平台) or the municipal ingest node (D9, D10)."""

    code: str  # GB/T 2260 division code
    name: str
    level: str  # "district" or "municipal"
    departments: tuple[Department, ...]


@dataclass(frozen=True)
class Sink:
    tier: str
    name: str
    store_url: str


@dataclass(frozen=True)
class Timeliness:
    publish_working_days: int  # D5
    report_working_days: int  # D6
    calendar_overrides: Path | None


@dataclass(frozen=True)
class Federation:
    path: Path
    name: str
    partitions: int
    municipal: Node
    districts: tuple[Node, ...]
    sinks: dict[str, Sink]
    timeliness: Timeliness
    refbase_url: str
    rules: RuleBook  # the dated rule sets with this federation's floors (D11, D14, D16; rules.toml)
    # signer -> its Ed25519 public keys, base64 (two during a rotation); `sgs.serialization.signing`, issue 16
    keys: dict[str, tuple[str, ...]]

    def signers(self) -> tuple[str, ...]:
        """Every signer the federation has: each node, the worker, each sink."""
        return (*(f"node.{n.code}" for n in self.nodes), "worker", *(f"sink.{t}" for t in TIERS))

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.municipal, *self.districts)

    def node(self, code: str) -> Node:
        for node in self.nodes:
            if node.code == code:
                return node
        raise KeyError(code)

    def token_hashes(self) -> dict[str, str | None]:
        """Department id -> the hash of its upload token (None: it has only its development token)."""
        return {d.id: d.token_hash for n in self.nodes for d in n.departments}


class _Reader:
    """Typed access to the parsed TOML that reports the dotted key on any problem."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.path, key, message)

    def get(self, table: dict[str, Any], key: str, where: str, kind: type, default: Any = ...) -> Any:
        dotted = f"{where}.{key}" if where else key
        if key not in table:
            if default is ...:
                raise self.fail(dotted, "missing")
            return default
        value = table[key]
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            raise self.fail(dotted, f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return value


def _node(r: _Reader, table: Any, where: str, level: str) -> Node:
    if not isinstance(table, dict):
        raise r.fail(where, "expected a table")
    code = r.get(table, "code", where, str)
    if not _DIVISION.match(code):
        raise r.fail(f"{where}.code", f"{code!r} is not a six-digit GB/T 2260 division code")
    depts = r.get(table, "departments", where, list)
    if not depts:
        raise r.fail(f"{where}.departments", "a node needs at least one department")
    departments = []
    for i, d in enumerate(depts):
        dwhere = f"{where}.departments[{i}]"
        if not isinstance(d, dict):
            raise r.fail(dwhere, "expected a table")
        key = r.get(d, "key", dwhere, str)
        uscc = r.get(d, "uscc", dwhere, str)
        if not _USCC.match(uscc):
            raise r.fail(f"{dwhere}.uscc", f"{uscc!r} is not an 18-character 统一社会信用代码")
        if "token" in d:
            raise r.fail(
                f"{dwhere}.token",
                f"a token is never kept in the config, only its hash: `sgs tokens new {code}-{key}` writes one",
            )
        token_hash = r.get(d, "token_hash", dwhere, str, None)
        if token_hash is not None and not check_hash_format(token_hash):
            raise r.fail(
                f"{dwhere}.token_hash", "not a hash `sgs tokens new` writes (scrypt$N$r$p$salt$hash)"
            )
        name = r.get(d, "name", dwhere, str)
        departments.append(Department(f"{code}-{key}", key, name, code, uscc, token_hash))
    return Node(code, r.get(table, "name", where, str), level, tuple(departments))


def read_toml(path: Path, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """A TOML file as a table; a file that cannot be read or parsed is `error` naming the file."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(path, "(file)", f"cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(path, "(file)", f"not valid TOML: {exc}") from None


def load_config(path: str | Path | None = None) -> Federation:
    """Read and check the federation config; `None` means the default file shipped at the repository root."""
    path = Path(path) if path else DEFAULT_CONFIG
    raw = read_toml(path)
    r = _Reader(path)

    fed = r.get(raw, "federation", "", dict)
    partitions = r.get(fed, "partitions", "federation", int, 4)
    if not 1 <= partitions <= 1024:
        raise r.fail("federation.partitions", f"{partitions} is outside 1..1024")

    municipal = _node(r, r.get(raw, "municipal", "", dict), "municipal", "municipal")
    districts = tuple(
        _node(r, d, f"districts[{i}]", "district") for i, d in enumerate(r.get(raw, "districts", "", list))
    )
    codes = [n.code for n in (municipal, *districts)]
    if len(set(codes)) != len(codes):
        raise r.fail("districts", "two nodes share a division code")

    sinks_raw = r.get(raw, "sinks", "", dict)
    sinks = {}
    for tier in TIERS:
        s = r.get(sinks_raw, tier, "sinks", dict)
        sinks[tier] = Sink(
            tier, r.get(s, "name", f"sinks.{tier}", str), r.get(s, "store_url", f"sinks.{tier}", str)
        )
    unknown = set(sinks_raw) - set(TIERS)
    if unknown:
        raise r.fail("sinks", f"unknown tier(s) {sorted(unknown)}; known: {list(TIERS)}")

    t = r.get(raw, "timeliness", "", dict, {})
    overrides = r.get(t, "calendar_overrides", "timeliness", str, "")
    timeliness = Timeliness(
        publish_working_days=r.get(t, "publish_working_days", "timeliness", int, 7),
        report_working_days=r.get(t, "report_working_days", "timeliness", int, 2),
        calendar_overrides=(path.parent / overrides) if overrides else None,
    )
    stores = r.get(raw, "stores", "", dict, {})
    keys = _keys(r, r.get(raw, "keys", "", dict, {}), (municipal, *districts))
    return Federation(
        path=path,
        name=r.get(fed, "name", "federation", str),
        partitions=partitions,
        municipal=municipal,
        districts=districts,
        sinks=sinks,
        timeliness=timeliness,
        refbase_url=r.get(stores, "refbase_url", "stores", str, "sqlite:///{data_dir}/refbase.db"),
        rules=_rules(r, r.get(raw, "rules", "", dict, {})),
        keys=keys,
    )


def load_rule_book(path: str | Path | None = None) -> RuleBook:
    """Read and check a rule book (default: the shipped rules.toml); a mistake is a `ConfigError` naming the file
    and the key."""
    path = Path(path) if path else DEFAULT_RULE_BOOK
    try:
        return RuleBook.from_table(path, read_toml(path))
    except RuleBookError as exc:
        raise ConfigError(Path(exc.path), exc.key, exc.detail) from None


def _rules(r: _Reader, table: dict[str, Any]) -> RuleBook:
    """`rules.book` (a path relative to the config; default the shipped rules.toml) with `[[rules.floors]]`."""
    book = r.get(table, "book", "rules", str, "")
    loaded = load_rule_book(r.path.parent / book if book else None)
    try:
        floors = [
            floor_from_config(r.path, f, f"rules.floors[{i}]")
            for i, f in enumerate(r.get(table, "floors", "rules", list, []))
        ]
    except RuleBookError as exc:
        raise ConfigError(Path(exc.path), exc.key, exc.detail) from None
    return loaded.with_floors(floors)


def _keys(r: _Reader, table: dict[str, Any], nodes: tuple[Node, ...]) -> dict[str, tuple[str, ...]]:
    """`[keys]`: signer = ["<base64 Ed25519 public key>", ...], one key, or two during a rotation."""
    known = {f"node.{n.code}" for n in nodes} | {"worker"} | {f"sink.{t}" for t in TIERS}
    keys = {}
    for signer, texts in table.items():
        where = f"keys.{signer}"
        if signer not in known:
            raise r.fail(where, "not a signer of this federation (node.<code>, worker, sink.<tier>)")
        if not isinstance(texts, list) or not 1 <= len(texts) <= 2:
            raise r.fail(where, "expected a list of one public key, or two during a rotation")
        for text in texts:
            try:
                raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
            except binascii.Error:
                raw = b""
            if len(raw) != 32:
                raise r.fail(where, f"{text!r} is not a base64 Ed25519 public key (32 bytes)")
        keys[signer] = tuple(texts)
    return keys


def store_url(template: str, data_dir: str | Path) -> str:
    """Store URLs in the config may say `{data_dir}`: the process's `--data-dir`."""
    return template.replace("{data_dir}", str(Path(data_dir).resolve()))
