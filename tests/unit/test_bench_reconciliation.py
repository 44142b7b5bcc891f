"""`sgs bench`'s accounting without processes: what the sinks must hold after a generated stream, and how a
missing, extra or doubled row is counted (simulators/reconciliation.py), plus how the posts are batched."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from simulators.bench import build_requests, percentiles
from simulators.generator import DUPLICATE, REJECTED, WITHDRAWN, FaultMix, Generator
from simulators.reconciliation import Expectation, Held, Row, reconcile

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _stream(federation, n=3000):
    faults = FaultMix(invalid=0.05, duplicate=0.05, update=0.05, revoke=0.05)
    return list(Generator(federation, seed=99, faults=faults).take(n))


def _perfect_stores(exp: Expectation) -> dict[str, dict[str, Row]]:
    return {
        tier: {rid: Row(held, NOW, None, NOW) for rid, held in rows.items()}
        for tier, rows in exp.tiers.items()
    }


def _all_seen(exp: Expectation):
    return exp.rejected, exp.absorbed


def test_revoked_record_is_expected_withdrawn_in_every_tier_that_held_it(federation):
    items = _stream(federation)
    exp = Expectation.of(items)
    revokes = [i for i in items if i.expect == WITHDRAWN]
    assert revokes, "the stream has no revocation to check"
    for item in revokes:
        held_somewhere = False
        for tier, rows in exp.tiers.items():
            if item.record_id in rows:
                held_somewhere = True
                assert rows[item.record_id].withdrawn_version == item.version, tier
                assert rows[item.record_id].version < item.version
        assert held_somewhere  # D4: a revocation follows a version that travelled (provincial holds all, D11)


def test_rejected_and_duplicate_versions_change_no_sink(federation):
    items = _stream(federation)
    exp = Expectation.of(items)
    rejected = {(i.record_id, i.version) for i in items if i.expect == REJECTED}
    duplicates = {(i.record_id, i.version) for i in items if i.expect == DUPLICATE}
    assert rejected and duplicates
    assert exp.rejected == rejected and exp.absorbed == duplicates
    for rid, _ in rejected:
        assert all(rid not in rows for rows in exp.tiers.values())


def test_national_tier_expects_only_what_d11_lets_through(federation):
    items = _stream(federation)
    exp = Expectation.of(items)
    for item in items:
        if item.expect == "provincial_only":
            assert item.record_id not in exp.tiers["national"]
            assert item.record_id in exp.tiers["provincial"]


def test_sinks_holding_exactly_the_expectation_reconcile_with_nothing_lost(federation):
    exp = Expectation.of(_stream(federation))
    rec = reconcile(exp, _perfect_stores(exp), {}, *_all_seen(exp))
    assert rec.ok, rec.samples
    assert rec.relayed["provincial"] + rec.withdrawn["provincial"] == len(exp.tiers["provincial"])
    assert rec.rejected == len(exp.rejected)


def test_a_missing_row_or_an_older_version_is_lost(federation):
    exp = Expectation.of(_stream(federation))
    stores = _perfect_stores(exp)
    missing = next(iter(stores["national"]))
    del stores["national"][missing]
    behind = next(rid for rid, held in exp.tiers["provincial"].items() if held.version > 1)
    stores["provincial"][behind] = Row(Held(1), NOW, None, NOW)
    rec = reconcile(exp, stores, {}, *_all_seen(exp))
    assert rec.lost == 2
    assert rec.duplicated == 0
    assert any(missing in s for s in rec.samples) and any(behind in s for s in rec.samples)


def test_an_expected_rejection_never_seen_is_lost(federation):
    exp = Expectation.of(_stream(federation))
    seen = set(list(exp.rejected)[1:])
    rec = reconcile(exp, _perfect_stores(exp), {}, seen, exp.absorbed)
    assert rec.lost == 1


def test_an_unexpected_row_or_a_pair_stored_twice_is_duplicated(federation):
    exp = Expectation.of(_stream(federation))
    stores = _perfect_stores(exp)
    stores["national"]["penalty:113100000000000191:沪市监处〔2026〕99999999号"] = Row(Held(1), NOW, None, NOW)
    rec = reconcile(exp, stores, {"provincial": 2}, *_all_seen(exp))
    assert rec.duplicated == 3
    assert rec.lost == 0
    assert not rec.ok


def test_posts_keep_each_departments_records_in_order_on_one_connection(federation):
    items = _stream(federation, 2000)
    lanes = build_requests(items, batch=50, lanes=4)
    posted = [i for lane in lanes for request in lane for i in request.items]
    assert sorted(posted) == list(range(len(items)))  # every item once
    lane_of: dict[str, int] = {}
    last_index: dict[str, int] = {}
    for n, lane in enumerate(lanes):
        for request in lane:
            body = json.loads(request.body)
            assert len(body) == len(request.items) <= 50
            for i in request.items:
                item = items[i]
                assert item.kind == request.kind and item.department.token == request.token
                assert lane_of.setdefault(item.department.id, n) == n
                assert last_index.get(item.record_id, -1) < i  # D4: versions in sending order
                last_index[item.record_id] = i


def test_percentiles_by_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None}


def test_a_revoked_record_no_sink_ever_held_is_accounted_not_lost(federation):
    exp = Expectation.of(_stream(federation))
    stores = _perfect_stores(exp)
    revoked = next(rid for rid, held in exp.tiers["provincial"].items() if held.withdrawn_version is not None)
    for rows in stores.values():
        rows.pop(revoked, None)
    rec = reconcile(exp, stores, {}, *_all_seen(exp))
    assert rec.ok, rec.samples
    assert rec.revoked_before_relay["provincial"] == 1
