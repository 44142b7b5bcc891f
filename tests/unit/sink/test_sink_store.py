"""The sink store on SQLite and on PostgreSQL: idempotent upserts, withdrawals, what the public may see."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.sink.consumer import ReceiptBuilder, RelayConsumer, refusal_rule
from services.sink.metrics import SinkMetrics
from services.sink.store import Query, Row, SinkStore, normalise_name
from sgs.domain.kinds import KIND_OF_SCHEMA
from sgs.domain.rulebook import Floor
from sgs.serialization.codec import default_codec
from tests.support.sink_records import decoded, license_record, penalty_record, person, unique_tag, withdrawal

TODAY = date.today()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SinkStore]:
    """A fresh store: a SQLite file, or a schema of its own in the test PostgreSQL (dropped afterwards)."""
    if request.param == "sqlite":
        s = SinkStore(f"sqlite:///{tmp_path}/sink.db")
        yield s
        s.close()
        return
    s = SinkStore(request.getfixturevalue("postgres_url"), schema=request.getfixturevalue("postgres_schema"))
    yield s
    s.close()


def apply(store: SinkStore, *messages: dict[str, Any], tier: str = "provincial", offset: int = 0) -> Any:
    return store.apply(
        [decoded(m) for m in messages], {("sgs.relay.test", 0): offset + len(messages)}, ReceiptBuilder(tier)
    )


def public_ids(store: SinkStore, **criteria: Any) -> set[str]:
    _, rows = store.search(Query(size=100, **criteria), TODAY)
    return {r.record_id for r in rows}


def receipts(store: SinkStore) -> list[tuple[str, str, int]]:
    """The outbox, in order: (status, record id, version) of each receipt."""
    codec = default_codec()
    found = [codec.decode(value)[1] for _, _, value in store.pending_receipts()]
    return [(r["status"], r["record_id"], r["version"]) for r in found]


def inserts_into_records(store: SinkStore) -> list[int]:
    """A list that counts the statements sent to the database that write `sink_records` rows (INSERT)."""
    seen: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO") and "sink_records" in statement.split("(")[0]:
            seen.append(1)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    return seen


def test_a_batch_of_distinct_records_is_upserted_by_one_statement(store: SinkStore) -> None:
    """Issue 14: a run of records with distinct ids is one multi-row INSERT .. ON CONFLICT, not one per record;
    the rows it skips (already held) are told apart from the ones it wrote."""
    tag = unique_tag()
    old = [license_record(f"许〔{tag}〕{i}号", f"{tag}公司") for i in range(10)]
    apply(store, *old)
    new = [penalty_record(f"处〔{tag}〕{i}号", f"{tag}公司") for i in range(40)]
    seen = inserts_into_records(store)
    outcome = apply(store, *new[:20], *old, *new[20:])
    assert len(seen) == 1
    assert [r.record_id for r in outcome.upserted] == [m["envelope"]["record_id"] for m in new]
    assert outcome.duplicates == ["license"] * 10
    assert len(receipts(store)) == 10 + 40


def test_two_versions_of_a_record_in_one_batch_leave_the_higher_held_with_a_receipt_each(
    store: SinkStore,
) -> None:
    tag = unique_tag()
    v1 = license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司", version=1)
    v2 = license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司", version=2)
    other = penalty_record(f"处〔{tag}〕2号", "上海乙餐饮有限公司")
    rid = v1["envelope"]["record_id"]
    outcome = apply(store, v1, other, v2)
    assert [(r.record_id, r.version) for r in outcome.upserted] == [
        (rid, 1),
        (other["envelope"]["record_id"], 1),
        (rid, 2),
    ]
    assert outcome.duplicates == []
    row = store.public_record(rid, TODAY)
    assert row is not None and row.version == 2 and "版本 2" in row.record
    assert receipts(store) == [
        ("RELAYED_PROVINCIAL", rid, 1),
        ("RELAYED_PROVINCIAL", other["envelope"]["record_id"], 1),
        ("RELAYED_PROVINCIAL", rid, 2),
    ]
    # the other way round in one batch: the lower version, after the higher one, is absorbed
    tag = unique_tag()
    v1 = license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司", version=1)
    v2 = license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司", version=2)
    outcome = apply(store, v2, v1)
    assert [r.version for r in outcome.upserted] == [2] and outcome.duplicates == ["license"]
    assert store.public_record(v1["envelope"]["record_id"], TODAY).version == 2


def test_a_duplicate_in_the_same_batch_and_across_batches_is_counted_and_sends_no_receipt(
    store: SinkStore,
) -> None:
    tag = unique_tag()
    a = license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司")
    b = penalty_record(f"处〔{tag}〕2号", "上海乙餐饮有限公司")
    first = apply(store, a, b, a)
    assert [r.record_id for r in first.upserted] == [a["envelope"]["record_id"], b["envelope"]["record_id"]]
    assert first.duplicates == ["license"]
    second = apply(store, b, a, b, offset=3)
    assert second.upserted == [] and second.duplicates == ["penalty", "license", "penalty"]
    assert [rid for _, rid, _ in receipts(store)] == [a["envelope"]["record_id"], b["envelope"]["record_id"]]


def test_a_withdrawal_between_two_versions_in_one_batch_takes_effect_in_order(store: SinkStore) -> None:
    """v1, its withdrawal, v2 in one batch: v1 is taken down and v2 publishes again (D15); a withdrawal of v2
    arriving before v2 takes v1 down and keeps v2 withdrawn when it comes (a version at or below a withdrawal's
    stays withdrawn)."""
    tag = unique_tag()
    v1 = penalty_record(f"处〔{tag}〕1号", "上海甲商贸有限公司", version=1)
    v2 = penalty_record(f"处〔{tag}〕1号", "上海甲商贸有限公司", version=2)
    rid = v1["envelope"]["record_id"]
    outcome = apply(store, v1, withdrawal(v1, "OBJECTION_UPHELD"), v2)
    assert [r.version for r in outcome.upserted] == [1, 2] and len(outcome.withdrawn) == 1
    row = store.public_record(rid, TODAY)
    assert row is not None and row.version == 2
    assert receipts(store) == [
        ("RELAYED_PROVINCIAL", rid, 1),
        ("WITHDRAWN", rid, 1),
        ("RELAYED_PROVINCIAL", rid, 2),
    ]

    tag = unique_tag()
    v1 = penalty_record(f"处〔{tag}〕1号", "上海甲商贸有限公司", version=1)
    v2 = penalty_record(f"处〔{tag}〕1号", "上海甲商贸有限公司", version=2)
    rid = v1["envelope"]["record_id"]
    outcome = apply(store, v1, withdrawal(v1, "SUPERSEDED", version=2), v2)
    assert [r.version for r in outcome.upserted] == [1] and len(outcome.withdrawn) == 1
    assert outcome.duplicates == ["penalty"]
    assert store.public_record(rid, TODAY) is None
    assert store.operator_read(rid, "审核员", None).version == 1


def test_the_same_version_with_its_objection_mark_changed_in_one_batch_replaces_the_row(
    store: SinkStore,
) -> None:
    """D15 within one batch: the marked relay of the held version replaces it, a repeat of it is a duplicate, and
    the settled (unmarked) one replaces it again."""
    tag = unique_tag()
    plain = penalty_record(f"处〔{tag}〕1号", "上海甲商贸有限公司")
    marked = {**plain, "annotations": {**plain["annotations"], "under_objection": True}}
    rid = plain["envelope"]["record_id"]
    outcome = apply(store, plain, marked, marked)
    assert len(outcome.upserted) == 2 and outcome.duplicates == ["penalty"]
    assert store.public_record(rid, TODAY).under_objection is True
    outcome = apply(store, marked, plain, offset=3)
    assert len(outcome.upserted) == 1 and outcome.duplicates == ["penalty"]
    assert store.public_record(rid, TODAY).under_objection is False
    assert len(receipts(store)) == 3


def test_a_batch_the_database_refuses_is_applied_one_message_at_a_time(store: SinkStore) -> None:
    """Poison isolation: the batch's one statement fails for one bad row, so the consumer retries message by
    message, skips the bad one (counted) and keeps the rest and the offset."""
    tag = unique_tag()
    good = [decoded(license_record(f"许〔{tag}〕{i}号", f"{tag}公司")) for i in range(3)]
    bad_name, bad_record = decoded(penalty_record(f"处〔{tag}〕9号", f"{tag}公司"))
    bad_row = dataclasses.replace(Row.from_record(bad_record), authority_uscc=None)  # NOT NULL refuses it
    consumer = RelayConsumer.__new__(RelayConsumer)  # the store-facing part, without Kafka
    consumer.store, consumer.tier = store, "provincial"
    consumer.metrics = SinkMetrics("provincial")
    consumer.receipt_for = ReceiptBuilder("provincial")
    with pytest.raises(sa.exc.IntegrityError):
        store.apply([good[0], (bad_name, bad_record, bad_row)], {}, consumer.receipt_for)
    outcome = consumer._apply(  # noqa: SLF001 - the consumer's retry, without a poll loop
        [good[0], good[1], (bad_name, bad_record, bad_row), good[2]],
        {("sgs.relay.test", 0): 4},
        threading.Event(),
    )
    assert outcome is not None
    assert [r.record_id for r in outcome.upserted] == [g[1]["envelope"]["record_id"] for g in good]
    assert consumer.metrics.registry.get_sample_value("sgs_sink_poison_total", {"tier": "provincial"}) == 1
    assert store.stored_offsets("sgs.relay.test") == {0: 4}
    assert len(receipts(store)) == 3


def test_replaying_the_same_messages_twice_leaves_the_store_identical(store: SinkStore) -> None:
    tag = unique_tag()
    stream = [
        license_record(f"沪黄市监许〔{tag}〕1号", "上海甲商贸有限公司"),
        penalty_record(f"沪黄市监处〔{tag}〕2号", "上海乙餐饮有限公司"),
        license_record(f"沪黄市监许〔{tag}〕1号", "上海甲商贸有限公司", version=2),
    ]
    stream.append(withdrawal(stream[1]))
    first = apply(store, *stream)
    before = list(store.dump_records())
    second = apply(store, *stream, offset=len(stream))
    assert list(store.dump_records()) == before
    assert len(first.upserted) == 3 and len(first.withdrawn) == 1
    assert second.upserted == [] and second.withdrawn == [] and len(second.duplicates) == 4


def test_a_higher_version_replaces_a_lower_one_and_a_lower_one_is_absorbed(store: SinkStore) -> None:
    tag = unique_tag()
    v1 = license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司", version=1)
    v3 = license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司", version=3)
    apply(store, v3)
    late = apply(store, v1)
    assert late.duplicates == ["license"]
    row = store.public_record(v1["envelope"]["record_id"], TODAY)
    assert row is not None and row.version == 3


def test_a_withdrawal_takes_the_record_out_of_every_public_answer(store: SinkStore) -> None:
    tag = unique_tag()
    rec = penalty_record(f"处〔{tag}〕1号", f"上海{tag}有限公司", uscc="91310101MA1FPW0001")
    apply(store, rec)
    rid = rec["envelope"]["record_id"]
    assert rid in public_ids(store, name=tag)
    outcome = apply(store, withdrawal(rec, "REPAIRED"))
    assert len(outcome.withdrawn) == 1
    assert rid not in public_ids(store, name=tag)
    assert store.public_record(rid, TODAY) is None
    assert store.subject("91310101MA1FPW0001", TODAY) == []


def test_a_withdrawal_of_an_older_version_leaves_a_newer_one_published(store: SinkStore) -> None:
    tag = unique_tag()
    v2 = license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司", version=2)
    apply(store, v2)
    outcome = apply(store, withdrawal(v2, version=1))
    assert outcome.ignored_withdrawals and not outcome.withdrawn
    assert store.public_record(v2["envelope"]["record_id"], TODAY) is not None


def test_a_corrected_higher_version_after_a_withdrawal_is_published_again(store: SinkStore) -> None:
    """D15: an objection can end in a correction, which travels as a new version."""
    tag = unique_tag()
    v1 = penalty_record(f"处〔{tag}〕1号", "上海甲商贸有限公司", version=1)
    apply(store, v1, withdrawal(v1, "OBJECTION_UPHELD"))
    rid = v1["envelope"]["record_id"]
    assert store.public_record(rid, TODAY) is None
    assert apply(store, v1).duplicates == ["penalty"]  # the withdrawn version itself does not come back
    apply(store, penalty_record(f"处〔{tag}〕1号", "上海甲商贸有限公司", version=2))
    row = store.public_record(rid, TODAY)
    assert row is not None and row.version == 2


def test_the_same_version_relayed_again_with_its_objection_mark_changed_replaces_the_row(
    store: SinkStore,
) -> None:
    """D15: the municipal platform relays the held version again when an objection is raised or settled; a repeat
    of either message is still a duplicate, and a replay ends in the same state."""
    tag = unique_tag()
    plain = penalty_record(f"处〔{tag}〕1号", "上海甲商贸有限公司")
    marked = {**plain, "annotations": {**plain["annotations"], "under_objection": True}}
    rid = plain["envelope"]["record_id"]
    apply(store, plain)
    assert len(apply(store, marked).upserted) == 1
    assert store.public_record(rid, TODAY).under_objection is True
    assert apply(store, marked).duplicates == ["penalty"]
    assert len(apply(store, plain).upserted) == 1
    row = store.public_record(rid, TODAY)
    assert row is not None and row.under_objection is False and row.version == 1


def test_a_withdrawn_version_relayed_again_with_another_objection_mark_stays_withdrawn(
    store: SinkStore,
) -> None:
    tag = unique_tag()
    plain = penalty_record(f"处〔{tag}〕1号", "上海甲商贸有限公司")
    marked = {**plain, "annotations": {**plain["annotations"], "under_objection": True}}
    apply(store, plain, withdrawal(plain, "SUPERSEDED"))
    assert apply(store, marked).duplicates == ["penalty"]
    assert store.public_record(plain["envelope"]["record_id"], TODAY) is None


def test_a_revoke_operation_holds_the_record_withdrawn(store: SinkStore) -> None:
    tag = unique_tag()
    rec = license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司", version=2, operation="REVOKE")
    apply(store, license_record(f"许〔{tag}〕1号", "上海甲商贸有限公司"), rec)
    assert store.public_record(rec["envelope"]["record_id"], TODAY) is None


def test_an_expired_record_disappears_and_a_long_term_one_stays(store: SinkStore) -> None:
    """D14: shown until the publicity end date inclusive; no end date means long-term."""
    tag = unique_tag()
    expired = penalty_record(f"处〔{tag}〕1号", f"{tag}甲", publicity_end=TODAY - timedelta(days=1))
    last_day = penalty_record(f"处〔{tag}〕2号", f"{tag}乙", publicity_end=TODAY)
    long_term = license_record(f"许〔{tag}〕3号", f"{tag}丙", publicity_end=None)
    apply(store, expired, last_day, long_term)
    assert public_ids(store, name=tag) == {
        last_day["envelope"]["record_id"],
        long_term["envelope"]["record_id"],
    }
    assert store.public_record(expired["envelope"]["record_id"], TODAY) is None


def test_a_not_for_publication_record_is_never_in_a_public_answer(store: SinkStore) -> None:
    tag = unique_tag()
    hidden = penalty_record(f"处〔{tag}〕1号", f"{tag}甲", for_publication=False, uscc="91310101MA1FPW0002")
    apply(store, hidden)
    rid = hidden["envelope"]["record_id"]
    assert public_ids(store, name=tag) == set()
    assert store.public_record(rid, TODAY) is None
    assert store.subject("91310101MA1FPW0002", TODAY) == []
    assert store.operator_read(rid, "审核员", None) is not None  # held, for operators only (D17)


def test_publication_follows_the_rule_books_annotation_and_d11_without_one(store: SinkStore) -> None:
    """The municipal platform's rule book decides (annotations.for_publication, per tier): a 简易程序 penalty the
    rules publish (a department floor) is public, one they do not is not; a record relayed without annotations
    falls back to D11 (001 四(一): 简易程序 is not published)."""
    tag = unique_tag()
    floored = penalty_record(f"处〔{tag}〕1号", f"{tag}甲", procedure="SIMPLE", for_publication=True)
    collected = penalty_record(f"处〔{tag}〕2号", f"{tag}乙", procedure="SIMPLE", for_publication=False)
    bare = {**penalty_record(f"处〔{tag}〕3号", f"{tag}丙", procedure="SIMPLE"), "annotations": None}
    apply(store, floored, collected, bare)
    assert public_ids(store, name=tag) == {floored["envelope"]["record_id"]}
    assert store.public_record(bare["envelope"]["record_id"], TODAY) is None


def test_the_national_tier_refuses_what_the_rule_book_does_not_send_it(federation) -> None:
    """D11 by the rule set of the decision date: 信用中国 takes neither natural persons' nor 简易程序 penalties; the
    provincial tier takes both."""
    tag = unique_tag()
    rules = federation.rules
    natural = decoded(penalty_record(f"处〔{tag}〕1号", "李四", counterpart=person()))
    simple = decoded(penalty_record(f"处〔{tag}〕2号", "上海甲有限公司", procedure="SIMPLE"))
    company = decoded(penalty_record(f"处〔{tag}〕3号", "上海甲有限公司"))
    licence = decoded(license_record(f"许〔{tag}〕4号", "上海甲有限公司"))
    assert refusal_rule("national", rules, *natural) == "D11"
    assert refusal_rule("national", rules, *simple) == "D11"
    assert refusal_rule("national", rules, *company) is None
    assert refusal_rule("national", rules, *licence) is None
    assert refusal_rule("provincial", rules, *natural) is None
    assert refusal_rule("provincial", rules, *simple) is None
    assert refusal_rule("national", rules, "sgs.Withdrawal", withdrawal(company[1], "REVOKED")) is None


def test_a_batchs_outcome_is_counted_per_kind(store: SinkStore) -> None:
    """The consumer's metrics count each message of a batch once (one increment per metric and kind)."""
    tag = unique_tag()
    a = license_record(f"许〔{tag}〕1号", "甲")
    b = license_record(f"许〔{tag}〕2号", "乙")
    c = penalty_record(f"处〔{tag}〕3号", "丙")
    revoked = license_record(f"许〔{tag}〕2号", "乙", version=2, operation="REVOKE")
    unknown = withdrawal(penalty_record(f"处〔{tag}〕4号", "丁"))
    outcome = apply(store, a, b, c, a, revoked, withdrawal(c), unknown, withdrawal(c))
    consumer = RelayConsumer.__new__(RelayConsumer)
    consumer.metrics, consumer.tier = SinkMetrics("provincial"), "provincial"
    consumer.account(outcome)
    sample = consumer.metrics.registry.get_sample_value
    counts = {
        (name, kind): sample(f"sgs_sink_{name}_total", {"tier": "provincial", "kind": kind}) or 0
        for name in ("upserts", "duplicates", "withdrawals", "withdrawals_ignored")
        for kind in ("license", "penalty")
    }
    assert counts == {
        ("upserts", "license"): 3,
        ("upserts", "penalty"): 1,
        ("duplicates", "license"): 1,
        ("duplicates", "penalty"): 1,
        ("withdrawals", "license"): 1,
        ("withdrawals", "penalty"): 1,
        ("withdrawals_ignored", "license"): 0,
        ("withdrawals_ignored", "penalty"): 1,
    }


def test_the_d11_check_answers_as_the_rule_books_ruling_does(federation) -> None:
    """The sink's D11 check asks the rule book once per combination of the facts that decide the relay tiers
    (issue 14); its answers are the full ruling's, across rule sets, procedures, severities, subject types and a
    department floor (a floor that relays one department's minor penalties nationally changes the answer)."""
    floor = Floor(
        id="test-floor",
        departments=frozenset({"scjg"}),
        kinds=frozenset({"penalty"}),
        tiers=None,
        effective_from=None,
        min=None,
        relay={"national": "publish"},
        sources=(),
    )
    books = [federation.rules, federation.rules.with_floors([floor])]
    tag = unique_tag()
    messages = []
    for day in (date(2026, 3, 31), date(2026, 4, 1)):
        for department in ("310101-scjg", "310101-swj"):
            for procedure, severity in (("SIMPLE", "MINOR"), ("GENERAL", "MINOR"), ("GENERAL", "SERIOUS")):
                for counterpart in (None, person()):
                    rec = penalty_record(
                        f"处〔{tag}〕{len(messages)}号", "上海甲有限公司", counterpart=counterpart
                    )
                    rec = {**rec, "decided_on": day, "procedure": procedure, "severity": severity}
                    rec["envelope"] = {**rec["envelope"], "decided_on": day, "department": department}
                    messages.append(decoded(rec))
            lic = license_record(f"许〔{tag}〕{len(messages)}号", "上海甲有限公司")
            lic = {**lic, "decided_on": day, "envelope": {**lic["envelope"], "department": department}}
            messages.append(decoded(lic))
    answers: dict[int, list[str | None]] = {}
    for i, book in enumerate(books):
        for tier in ("provincial", "national"):
            for name, record in messages:
                relay = book.ruling(KIND_OF_SCHEMA[name], record).relay
                answer = refusal_rule(tier, book, name, record)
                assert answer == (None if tier in relay else "D11"), (tier, record["envelope"])
                answers.setdefault(i, []).append(answer)
    assert "D11" in answers[0] and None in answers[0]
    assert answers[0] != answers[1]


def test_search_by_name_is_a_substring_match_that_ignores_width_and_spaces(store: SinkStore) -> None:
    tag = unique_tag()
    rec = license_record(f"许〔{tag}〕1号", f"上海{tag}（集团）有限公司")
    apply(store, rec)
    assert rec["envelope"]["record_id"] in public_ids(store, name=f"{tag.upper()} (集团)")
    assert public_ids(store, name=f"{tag}%") == set()  # LIKE wildcards are literal


def test_search_filters_combine_and_page(store: SinkStore) -> None:
    tag = unique_tag()
    recs = [license_record(f"许〔{tag}〕{i}号", f"{tag}公司", uscc="91310101MA1FPW0003") for i in range(5)]
    recs.append(penalty_record(f"处〔{tag}〕9号", f"{tag}公司", uscc="91310101MA1FPW0003"))
    apply(store, *recs)
    total, rows = store.search(Query(name=tag, kind="license", page=2, size=2), TODAY)
    assert total == 5 and len(rows) == 2
    total, _ = store.search(Query(uscc="91310101ma1fpw0003", doc_no=f"〔{tag}〕9"), TODAY)
    assert total == 1
    total, _ = store.search(Query(name=tag, decided_from=TODAY + timedelta(days=1)), TODAY)
    assert total == 0
    subject = store.subject("91310101MA1FPW0003", TODAY)
    assert {r.kind for r in subject} == {"license", "penalty"} and len(subject) == 6


def test_offsets_are_stored_with_the_writes_and_follow_the_topic_even_after_a_reset(store: SinkStore) -> None:
    tag = unique_tag()
    apply(store, license_record(f"许〔{tag}〕1号", "甲"), offset=41)
    assert store.stored_offsets("sgs.relay.test") == {0: 42}
    store.skip({("sgs.relay.test", 0): 50, ("sgs.relay.test", 3): 7})
    assert store.stored_offsets("sgs.relay.test") == {0: 50, 3: 7}
    store.skip({("sgs.relay.test", 0): 2})  # the topic was recreated and is read again from the start
    assert store.stored_offsets("sgs.relay.test") == {0: 2, 3: 7}


def test_offsets_belong_to_one_broker_and_are_forgotten_on_another(store: SinkStore) -> None:
    """The embedded broker starts empty with a new cluster id: offsets stored for the previous one mean nothing."""
    assert store.adopt_broker("cluster-a") == 0
    store.skip({("sgs.relay.test", 0): 50, ("sgs.relay.test", 3): 7})
    assert store.adopt_broker("cluster-a") == 0  # the same broker: a restarted sink resumes where it was
    assert store.stored_offsets("sgs.relay.test") == {0: 50, 3: 7}
    assert store.adopt_broker("cluster-b") == 2
    assert store.stored_offsets("sgs.relay.test") == {}
    assert store.adopt_broker("cluster-b") == 0


def test_receipts_wait_in_the_outbox_until_sent(store: SinkStore) -> None:
    tag = unique_tag()
    rec = license_record(f"许〔{tag}〕1号", "甲")
    apply(store, rec, withdrawal(rec))
    pending = store.pending_receipts()
    assert [key for _, key, _ in pending] == ["310101", "310101"]
    store.receipts_sent([i for i, _, _ in pending])
    assert store.pending_receipts() == []


def test_every_operator_read_is_logged(store: SinkStore) -> None:
    tag = unique_tag()
    rec = penalty_record(f"处〔{tag}〕1号", "甲")
    apply(store, rec)
    rid = rec["envelope"]["record_id"]
    assert store.operator_read(rid, "王五", "10.0.0.7") is not None
    assert store.operator_read("penalty:none:none", "王五", "10.0.0.7") is None
    log = store.access_entries()
    assert [(e.operator, e.record_id, e.version, e.client) for e in log] == [
        ("王五", rid, 1, "10.0.0.7"),
        ("王五", "penalty:none:none", None, "10.0.0.7"),
    ]


def test_normalised_names_fold_full_width_forms() -> None:
    assert normalise_name("上海 ＡＢＣ（集团）") == normalise_name("上海abc(集团)")


def test_receipts_say_which_tier_stored_or_withdrew_the_record_and_go_to_the_source_node() -> None:
    rec = penalty_record(f"处〔{unique_tag()}〕1号", "甲")
    codec = default_codec()
    key, value = ReceiptBuilder("national")("withdrawn", decoded(withdrawal(rec, "REPAIRED"))[1])
    name, receipt = codec.decode(value)
    assert (key, name, receipt["status"]) == ("310101", "sgs.Receipt", "WITHDRAWN")
    assert receipt["detail"] == "信用中国已撤下：信用修复"
    key, value = ReceiptBuilder("provincial")("relayed", decoded(rec)[1])
    receipt = codec.decode(value)[1]
    assert (receipt["status"], receipt["receipt_id"], receipt["version"]) == (
        "RELAYED_PROVINCIAL",
        rec["envelope"]["receipt_id"],
        1,
    )


def test_a_store_from_before_the_rule_book_gets_its_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    """Issue 15: rule_set and tier are added to an existing store on start; rows stored before show NULL there."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = SinkStore(url)
    tag = unique_tag()
    apply(old, penalty_record(f"处〔{tag}〕1号", f"{tag}甲"))
    with old.engine.begin() as conn:  # as a store created before issue 15 was
        for column in ("rule_set", "tier"):
            conn.exec_driver_sql(f"ALTER TABLE sink_records DROP COLUMN {column}")
    old.close()
    store = SinkStore(url)
    apply(store, penalty_record(f"处〔{tag}〕2号", f"{tag}乙", rule_set="ndrc-order-36", tier="MINOR"))
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT counterpart_name, rule_set, tier FROM sink_records ORDER BY 1"
        ).all()
    assert [tuple(r) for r in rows] == [(f"{tag}乙", "ndrc-order-36", "MINOR"), (f"{tag}甲", None, None)]
    store.close()


def test_a_store_from_before_its_indexes_gets_them_and_counts_held_records_from_one(tmp_path: Path) -> None:
    """Issue 14: the records-held gauge is counted every second and `sgs bench` asks what changed since a time; on
    the rows themselves both cost a scan of the whole store (41 ms a count at 23,000 rows). An existing store gets
    the indexes on start."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = SinkStore(url)
    tag = unique_tag()
    apply(old, penalty_record(f"处〔{tag}〕1号", f"{tag}甲"))
    with old.engine.begin() as conn:  # as a store created before the indexes were
        for index in old.records.indexes:
            conn.exec_driver_sql(f"DROP INDEX {index.name}")
    old.close()
    store = SinkStore(url)
    named = {i["name"] for i in sa.inspect(store.engine).get_indexes("sink_records")}
    assert {"ix_sink_records_held", "ix_sink_records_received_at", "ix_sink_records_withdrawn_at"} <= named
    r = store.records  # held_by_kind's query
    held = sa.select(r.c.kind, sa.func.count()).where(r.c.withdrawn.is_(False)).group_by(r.c.kind)
    sql = str(held.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    assert "COVERING INDEX ix_sink_records_held" in plan
    assert store.held_by_kind() == {"penalty": 1}
    store.close()


def test_the_stored_copy_keeps_every_field_with_times_dates_and_amounts_as_text(store: SinkStore) -> None:
    """What the pages and the API read back: the record as relayed, the accepted time with its UTC offset as
    `isoformat` writes it (rows stored before the copy was written with orjson read the same), dates as ISO
    dates, money as its exact decimal text."""
    import json

    message = decoded(penalty_record("沪罚〔2026〕9号", "某公司"))[1]  # as the sink reads it: times to the ms
    apply(store, message)
    stored = json.loads(store.public_record(message["envelope"]["record_id"], TODAY).record)
    assert stored["annotations"]["accepted_at"] == message["annotations"]["accepted_at"].isoformat()
    assert stored["decided_on"] == message["decided_on"].isoformat()
    assert stored["fine_amount"] == str(message["fine_amount"])
    assert stored["counterpart"]["name"] == "某公司"
    assert list(stored) == sorted(stored)
