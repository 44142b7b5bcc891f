"""What is wrong with a record or a row: the `Issue` (an `sgs.Reason` on the wire) and how an offending value is
quoted. Parsing (`records`), checking (`validation`, `identifiers`) and decisions (`lifecycle`) all report with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ROW = "(row)"  # the field of an issue about the record as a whole
MAX_VALUE_CHARS = (
    200  # an offending value is quoted up to this length, so a hostile cell cannot bloat a reason
)
MAX_REASONS = 50  # and a record lists at most this many, so its rejection always fits in a message


@dataclass(frozen=True)
class Issue:
    """One reason a record does not meet the standard (an `sgs.Reason`)."""

    field: str  # template column name (Chinese), or ROW
    rule: str  # stable rule id
    message: str  # Chinese message
    value: str | None = None

    def as_reason(self) -> dict[str, Any]:
        """The `sgs.Reason` Avro record."""
        return {"field": self.field, "rule": self.rule, "message": self.message, "value": self.value}


def quote(value: Any) -> str | None:
    """The offending value as text, cut to MAX_VALUE_CHARS."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def bounded(issues: list[Issue]) -> list[Issue]:
    """At most MAX_REASONS issues: the first ones, then one saying how many more there are (D12 wants every reason,
    but a record of a million unknown columns must not make a rejection larger than a message)."""
    if len(issues) <= MAX_REASONS:
        return issues
    more = len(issues) - (MAX_REASONS - 1)
    return [
        *issues[: MAX_REASONS - 1],
        Issue(ROW, "reasons.truncated", f"另有 {more} 个问题未列出", str(more)),
    ]
