"""The sink store on SQLite and on PostgreSQL: idempotent upserts, withdrawals, what the public may see."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.sink.consumer import ReceiptBuilder, refusal_rule
from services.sink.store import Query, SinkStore, normalise_name
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
