"""`services.worker.exactly_once.check_transactional_ids`: a restart under exactly-once takes the transactional ids its
predecessor used only while every assigned topic is in faust's topic group 0 (issue 13: the leader topic shifted the
streams to group 1 from the second start on, so a worker killed in its first run left its transactions open)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from faust.types import TP

from services.worker.exactly_once import check_transactional_ids


def _app(groups: dict[str, int]) -> SimpleNamespace:
    return SimpleNamespace(assignor=SimpleNamespace(group_for_topic=groups.__getitem__))


def _tps(*topics: str) -> set[TP]:
    return {TP(topic, p) for topic in topics for p in range(4)}


def test_every_topic_in_group_0_passes():
    check_transactional_ids(
        _app({"sgs.submitted.license": 0, "sgs-municipal-held": 0}),
        _tps(*["sgs.submitted.license", "sgs-municipal-held"]),
    )


def test_a_topic_in_another_group_fails_the_start():
    app = _app({"sgs-municipal-__assignor-__leader": 0, "sgs.submitted.license": 1})
    with pytest.raises(RuntimeError, match=r"sgs\.submitted\.license"):
        check_transactional_ids(app, _tps("sgs-municipal-__assignor-__leader", "sgs.submitted.license"))
