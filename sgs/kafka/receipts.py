"""What a node's receipts topic (`topics.receipts_topic`, key = the node) carries: receipts several to a message
(issue 14).

A receipt is a few hundred bytes, yet each message costs its writer a send and a signature proof, and its reader
a fetch, a signature check and a decode, about three times a record (the worker's receipt and each sink's). So the
worker and the sinks send a node's receipts as `sgs.Receipts` messages, up to MAX_RECEIPTS in one, in the order
they were made (`batches`); a receipt alone goes as an `sgs.Receipts` of one, so that one schema is written. The
node reads both (`receipts_in`): `sgs.Receipt` messages written before stay on the topic for its retention, and a
writer not yet upgraded may still send them.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

from sgs.kafka.topics import MAX_MESSAGE_BYTES
from sgs.serialization.codec import Codec

RECEIPT, RECEIPTS = "sgs.Receipt", "sgs.Receipts"
MAX_RECEIPTS = 100
# Well under the message limit: the signature headers and the record batch around the value fit beside it.
MAX_RECEIPTS_BYTES = MAX_MESSAGE_BYTES // 4

G = TypeVar("G", bound=Hashable)


def batches(codec: Codec, receipts: Sequence[tuple[G, dict[str, Any]]]) -> list[tuple[G, list[int], bytes]]:
    """`receipts` (group, `sgs.Receipt` record) as `sgs.Receipts` values: one group's receipts in the order given,
    at most MAX_RECEIPTS to a value and at most MAX_RECEIPTS_BYTES (a receipt larger than that goes alone), the
    groups in the order they first appear. A group is what must travel apart: a node, since a message goes to its
    node's topic, and for the worker under exactly-once also the transaction each receipt belongs to. Each value
    comes with its group and the positions in `receipts` of what it carries. `SerializationError` for a record
    that does not fit `sgs.Receipt`."""
    groups: dict[G, list[int]] = {}
    for at, (group, _) in enumerate(receipts):
        groups.setdefault(group, []).append(at)
    out: list[tuple[G, list[int], bytes]] = []
    for group, members in groups.items():
        for start in range(0, len(members), MAX_RECEIPTS):
            out += [
                (group, *value) for value in _encoded(codec, receipts, members[start : start + MAX_RECEIPTS])
            ]
    return out


def _encoded(
    codec: Codec, receipts: Sequence[tuple[Any, dict[str, Any]]], members: list[int]
) -> list[tuple[list[int], bytes]]:
    """`members` as one value, or halved until each part is at most MAX_RECEIPTS_BYTES (one encoding in the usual
    case, where receipts are small: reasons are what makes one large)."""
    value = codec.encode(RECEIPTS, {"receipts": [receipts[at][1] for at in members]})
    if len(value) <= MAX_RECEIPTS_BYTES or len(members) == 1:
        return [(members, value)]
    half = len(members) // 2
    return _encoded(codec, receipts, members[:half]) + _encoded(codec, receipts, members[half:])


def receipts_in(name: str, record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The receipts a decoded message of a receipts topic carries, in order: an `sgs.Receipt`'s one, an
    `sgs.Receipts`' batch; None for any other schema."""
    if name == RECEIPT:
        return [record]
    if name == RECEIPTS:
        return list(record["receipts"])
    return None
