"""What each sink must hold after a stream of submissions, and the count that proves nothing was lost or doubled.

`Expectation.of(items)` replays the generator's expectations (`Submission.expect`, `.tiers`) in sending order:
- `rejected` (D12) ends at the node or on `sgs.rejected`, never in a sink;
- `duplicate` (the same version again, D4) is absorbed: it changes no store;
- a version that travels is held by each tier it names (D11), the highest version winning (D4);
- `withdrawn` (REVOKE, D4) takes the record down in every tier that held it: the row stays, marked withdrawn with
  the revoking version and reason REVOKED. A revocation that overtakes its original inside the municipal platform
  means the tier never held the record: no row is as good as a withdrawn one (nothing is shown either way), counted
  apart;
- a held version is marked `under_objection` when the licence's 当前状态 says 异议 (D15);
- decisions on a record (`Submission.decisions`, posted once it was accepted) apply in order when they are expected
  to: an objection upheld (D15) or a credit repair approved (D16) withdraws the held version at every tier holding
  it (reason OBJECTION_UPHELD / REPAIRED); an objection raised / kept sets / clears the mark on the held version. A
  decision D16 refuses changes nothing and must come back as a rejection with its rule.
`account(expectation, stores, ...)` compares that with the rows the sinks hold and what became of each decision,
and classifies every record and decision sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgs.config import TIERS
from sgs.domain.lifecycle import OBJECTION_OPEN, WITHDRAWAL_REASON
from simulators.decisions import Observed
from simulators.generator import APPLIED, DUPLICATE, REJECTED, WITHDRAWN, Decision, Submission

if TYPE_CHECKING:
    from services.sink.store import SinkStore

SAMPLES = 5
REVOKED = "REVOKED"  # sgs.Withdrawal reason of a revocation (D4)


@dataclass(frozen=True)
class Held:
    """A record's row in one sink: the version held, whether it is marked under objection (D15), and, if taken
    down, the version that withdrew it and why (the sgs.Withdrawal reason). A withdrawn row's mark is not
    compared: nothing of it is shown."""

    version: int
    withdrawn_version: int | None = None
    reason: str | None = None
    under_objection: bool = False

    @property
    def revoked(self) -> bool:
        """Withdrawn by a revocation, which may overtake its original: then no tier ever held the record."""
        return self.reason == REVOKED


@dataclass
class Expectation:
    """The final state every sink must reach, per record id, and what else was sent."""

    tiers: dict[str, dict[str, Held]] = field(default_factory=lambda: {t: {} for t in TIERS})
    rejected: set[tuple[str, int]] = field(default_factory=set)  # (record id, version)
    absorbed: set[tuple[str, int]] = field(default_factory=set)  # duplicates: (record id, version)
    decisions: list[Decision] = field(default_factory=list)  # every decision sent, in order
    outcomes: Counter[str] = field(
        default_factory=Counter
    )  # expect -> items sent; decision:<expect> -> decisions

    @classmethod
    def of(cls, items: Iterable[Submission]) -> Expectation:
        exp = cls()
        for item in items:
            exp.outcomes[item.expect] += 1
            key = (item.record_id, item.version)
            if item.expect == REJECTED:
                exp.rejected.add(key)
            elif item.expect == DUPLICATE:
                exp.absorbed.add(key)
            elif item.expect == WITHDRAWN:
                for held in exp.tiers.values():
                    if item.record_id in held:
                        held[item.record_id] = Held(held[item.record_id].version, item.version, REVOKED)
            else:
                marked = item.record.get("status") == "OBJECTION"  # D15: a licence whose 当前状态 is 异议
                for tier in item.tiers:
                    exp.tiers[tier][item.record_id] = Held(item.version, under_objection=marked)
            for decision in item.decisions:
                exp.decisions.append(decision)
                exp.outcomes[f"decision:{decision.expect}"] += 1
                if decision.expect == APPLIED:
                    exp._apply(decision)
        return exp

    def _apply(self, decision: Decision) -> None:
        """An applied decision's effect on every tier holding the record (D15, D16)."""
        for held in self.tiers.values():
            was = held.get(decision.record_id)
            if was is None or was.withdrawn_version is not None:
                continue
            if decision.decision in WITHDRAWAL_REASON:
                held[decision.record_id] = Held(
                    was.version, was.version, WITHDRAWAL_REASON[decision.decision]
                )
            elif decision.decision in OBJECTION_OPEN:
                held[decision.record_id] = Held(
                    was.version, under_objection=OBJECTION_OPEN[decision.decision]
                )

    def record_ids(self) -> set[str]:
        """Every record id that must end in at least one sink."""
        return {rid for held in self.tiers.values() for rid in held}


@dataclass
class Row:
    """What a sink holds for one record, and when it got there (the sink's own clock, UTC)."""

    held: Held
    received_at: datetime  # the held version's arrival
    withdrawn_at: datetime | None
    submitted_at: datetime | None  # the held version's envelope: when its district node took it
    subject_hold: bool = False  # its counterpart was unknown to the reference base: the worker held it (D13)

    @property
    def settled_at(self) -> datetime:
        return (
            self.withdrawn_at
            if self.held.withdrawn_version is not None and self.withdrawn_at
            else self.received_at
        )


def settled(row: Row | None, want: Held) -> bool:
    """Whether a tier's row is the final state expected of it (a revoked record may also have no row)."""
    if row is None:
        return want.revoked
    return row.held == want


@dataclass
class Accounting:
    """Every record sent, accounted for; `lost` and `duplicated` must both be 0."""

    relayed: dict[str, int] = field(default_factory=dict)  # tier -> records held as expected
    withdrawn: dict[str, int] = field(default_factory=dict)  # tier -> records taken down as expected
    withdrawal_reasons: Counter[str] = field(default_factory=Counter)  # reason -> rows taken down as expected
    revoked_before_relay: dict[str, int] = field(default_factory=dict)  # tier -> revoked, never held: no row
    rejected: int = 0  # versions rejected where expected (node answer or sgs.rejected)
    absorbed: int = 0  # duplicates absorbed
    not_relayed_national: int = 0  # D11: held provincially only, by design
    decisions_applied: Counter[str] = field(default_factory=Counter)  # decision kind -> applied as expected
    decisions_refused: Counter[str] = field(default_factory=Counter)  # rule -> refused as expected (D16)
    lost: int = (
        0  # an expected row missing or behind, an expected rejection never seen, a decision that did not
    )
    # get in or came to another end than expected
    duplicated: int = 0  # a (record, version) twice in a store, or a row nobody expected
    unexpectedly_rejected: int = 0  # a version meant to travel that was rejected (counted in `lost` too)
    samples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.samples) < SAMPLES * 4:
            self.samples.append(text)

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "relayed": self.relayed,
            "withdrawn": self.withdrawn,
            "withdrawal_reasons": dict(self.withdrawal_reasons),
            "revoked_before_relay": self.revoked_before_relay,
            "rejected": self.rejected,
            "absorbed_duplicates": self.absorbed,
            "not_relayed_national": self.not_relayed_national,
            "decisions_applied": dict(self.decisions_applied),
            "decisions_refused": dict(self.decisions_refused),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpectedly_rejected": self.unexpectedly_rejected,
            "samples": self.samples,
        }


def account(
    exp: Expectation,
    stores: Mapping[str, Mapping[str, Row]],
    store_duplicates: Mapping[str, int],
    rejected_seen: set[tuple[str, int]],
    absorbed_seen: set[tuple[str, int]],
    decisions_seen: Mapping[tuple[str, str], Observed],
    decision_rejections: Mapping[str, set[str]],
) -> Accounting:
    """Compare the final sink rows (`stores[tier][record id]`) with the expectation.

    `store_duplicates[tier]` is the number of (record id, version) pairs a store holds more than once;
    `rejected_seen` the versions the node or the worker rejected; `absorbed_seen` the duplicates the node
    answered `unchanged` for (a duplicate the node never saw cannot be told apart from one absorbed later);
    `decisions_seen[decision.key]` what the node and the decision's receipt said of each decision (a decision
    missing there was never posted); `decision_rejections[receipt id]` the rules of the decisions rejected on
    `sgs.rejected`."""
    rec = Accounting()
    for tier in TIERS:
        expected, rows = exp.tiers[tier], stores.get(tier, {})
        rec.relayed[tier] = rec.withdrawn[tier] = rec.revoked_before_relay[tier] = 0
        if store_duplicates.get(tier):
            rec.duplicated += store_duplicates[tier]
            rec.note(f"{tier}: {store_duplicates[tier]} (record id, version) pairs stored twice")
        for rid, want in expected.items():
            row = rows.get(rid)
            if row is None and want.revoked:
                rec.revoked_before_relay[tier] += 1
                continue
            if row is not None and row.held == want:
                if want.withdrawn_version is None:
                    rec.relayed[tier] += 1
                else:
                    rec.withdrawn[tier] += 1
                    rec.withdrawal_reasons[str(want.reason)] += 1
                continue
            rec.lost += 1
            why = "rejected by the federation" if (rid, want.version) in rejected_seen else "missing"
            if (rid, want.version) in rejected_seen:
                rec.unexpectedly_rejected += 1
            rec.note(f"lost at {tier}: {rid} want {want}, holds {row.held if row else why}")
        for rid in rows.keys() - expected.keys():
            rec.duplicated += 1
            rec.note(f"unexpected at {tier}: {rid} {rows[rid].held}")
    rec.not_relayed_national = len(exp.tiers["provincial"].keys() - exp.tiers["national"].keys())
    for key in sorted(exp.rejected):
        if key in rejected_seen:
            rec.rejected += 1
        else:
            rec.lost += 1
            rec.note(f"expected rejection never seen: {key[0]} v{key[1]}")
    rec.absorbed = len(exp.absorbed)
    missed = exp.absorbed - absorbed_seen
    # A duplicate the node did not answer `unchanged` for was either taken again (then the worker absorbs it)
    # or rejected; only the latter changes its fate.
    for key in sorted(missed & rejected_seen):
        rec.lost += 1
        rec.note(f"duplicate rejected instead of absorbed: {key[0]} v{key[1]}")
    for decision in exp.decisions:
        seen = decisions_seen.get(decision.key) or Observed(error="never posted: its record never got in")
        refused = decision_rejections.get(seen.receipt_id or "")
        if refused:  # on sgs.rejected: the expected rule, or another one
            got: str | None = decision.expect if decision.expect in refused else min(refused)
        else:
            got = APPLIED if seen.status == "ACCEPTED" else None
        if got == decision.expect:
            if got == APPLIED:
                rec.decisions_applied[decision.decision] += 1
            else:
                rec.decisions_refused[got] += 1
            continue
        rec.lost += 1
        if got is None:
            why = seen.error or f"receipt {seen.status or 'not final'}, no rejection on sgs.rejected"
        else:
            why = f"came to {got}"
        rec.note(f"decision {decision.decision} on {decision.record_id} (expected {decision.expect}): {why}")
    return rec


# A record's way up, as the node's receipts tell it (`NodeStore.record_trails`): each hop runs from one event to the
# next. The worker stamps ACCEPTED while it works on a batch, before the batch's outputs go out, so the rest of the
# batch and the producer's linger fall in the sinks' hops.
HOPS = {
    "node": ("RECEIVED", "SENT"),  # taken, checked, stored, published to sgs.submitted.*: the broker has it
    "worker": ("SENT", "ACCEPTED"),  # fetched, checked and annotated by the municipal platform's worker
    "provincial": ("ACCEPTED", "RELAYED_PROVINCIAL"),  # relayed and stored by the provincial sink
    "national": ("ACCEPTED", "RELAYED_NATIONAL"),  # ... by the national sink
}


@dataclass
class NodeTimings:
    """What the node's store says about waits: each answered decision's, and each record version's trail."""

    # seconds from the node taking a decision to the municipal platform's answer
    decision_latencies: list[float]
    trails: list[tuple[str, dict[str, int]]]  # (record id, {event: first epoch ms})

    def hop_latencies(self, leave_out: set[str]) -> dict[str, list[float]]:
        """Seconds each hop took (`HOPS`), for every record version that made it, but the records in `leave_out`
        (those held for an unknown subject, D13, wait in the worker on purpose)."""
        hops: dict[str, list[float]] = {hop: [] for hop in HOPS}
        for record_id, events in self.trails:
            if record_id in leave_out:
                continue
            for hop, (start, end) in HOPS.items():
                if start in events and end in events:
                    hops[hop].append((events[end] - events[start]) / 1000)
        return hops


def read_node_timings(node_store: Path) -> NodeTimings:
    """The node's answers to decisions (D15, D16: what a department waits for once its decision is in) and the
    trail of each record version, from the node's store."""
    from services.node.store import NodeStore

    store = NodeStore(node_store)
    try:
        decisions = [(answered - taken) / 1000 for taken, answered in store.decision_answers()]
        return NodeTimings(decisions, store.record_trails())
    finally:
        store.close()


@contextmanager
def sink_stores(urls: Mapping[str, str]) -> Iterator[dict[str, SinkStore]]:
    """Each tier's sink store (any SQLAlchemy URL), opened once for every read of a run: opening one costs as much
    as a progress poll (about 12 ms at 60,000 rows), once a second for each tier (issue 14)."""
    from services.sink.store import SinkStore

    opened: dict[str, SinkStore] = {}
    try:
        for tier, url in urls.items():
            opened[tier] = SinkStore(url)
        yield opened
    finally:
        for store in opened.values():
            store.close()


def read_sink(
    store: SinkStore, *, with_submission: bool = False, changed_since: datetime | None = None
) -> tuple[dict[str, Row], int]:
    """The rows of one sink store and how many (record id, version) pairs it holds twice.

    `with_submission` also reads each held record's envelope `submitted_at` (for latency) and whether the worker
    held it for its unknown subject (D13): it parses every stored record, so progress polls leave it off.
    `changed_since` (naive UTC, as the sinks stamp rows): only the rows stored or withdrawn since then, and no count
    of pairs held twice (0): a progress poll then costs what changed, not the whole store (issue 14)."""
    import json

    import sqlalchemy as sa

    r = store.records
    columns = [
        r.c.record_id,
        r.c.version,
        r.c.withdrawn_version,
        r.c.withdrawal_reason,
        r.c.under_objection,
        r.c.received_at,
        r.c.withdrawn_at,
    ]
    if with_submission:
        columns.append(r.c.record)
    rows: dict[str, Row] = {}
    query = sa.select(*columns)
    if changed_since is not None:
        query = query.where(sa.or_(r.c.received_at >= changed_since, r.c.withdrawn_at >= changed_since))
    with store.engine.connect() as conn:
        for db_row in conn.execute(query):
            submitted, subject_hold = None, False
            if with_submission:
                stored = json.loads(db_row.record)
                submitted = datetime.fromisoformat(stored["envelope"]["submitted_at"])
                # UNKNOWN_CODE is final only after the worker's hold ran out (D13)
                reconciliation = (stored.get("annotations") or {}).get("reconciliation")
                subject_hold = reconciliation == "UNKNOWN_CODE"
            withdrawn = db_row.withdrawn_version
            held = Held(
                int(db_row.version),
                withdrawn,
                db_row.withdrawal_reason if withdrawn is not None else None,
                bool(db_row.under_objection) and withdrawn is None,
            )
            rows[db_row.record_id] = Row(
                held,
                db_row.received_at,
                db_row.withdrawn_at,
                submitted,
                subject_hold,
            )
        if changed_since is not None:
            return rows, 0
        twice = sa.select(r.c.record_id).group_by(r.c.record_id, r.c.version).having(sa.func.count() > 1)
        duplicates = int(conn.execute(sa.select(sa.func.count()).select_from(twice.subquery())).scalar_one())
    return rows, duplicates
