"""Fault schedules (sgs/ops/chaos/schedule.py): the spec, the random schedule, what each target accepts; the local target on
real child processes; `sgs chaos` without a Docker engine; the compose services it targets exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import structlog
import yaml

from sgs.ops.chaos import compose as chaos_compose
from sgs.ops.chaos import local as chaos_local
from sgs.ops.chaos.schedule import (
    DEFAULT_DURATION_S,
    RANDOM_DURATION_S,
    Fault,
    Runner,
    ScheduleError,
    check_supported,
    parse_fault,
    random_schedule,
    schedule_from_args,
)
from sgs.ops.supervisor import Child, launch
from tests.support.paths import REPO
from tests.support.polling import wait_until

ROOT = REPO
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


# --- the spec ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("worker:restart@20s", Fault(20.0, "worker", "restart", DEFAULT_DURATION_S)),
        ("node:pause@40s+10s", Fault(40.0, "node", "pause", 10.0)),
        ("broker:disconnect@1.5m+2.5s", Fault(90.0, "broker", "disconnect", 2.5)),
        ("sink:stop@7", Fault(7.0, "sink", "stop", DEFAULT_DURATION_S)),
    ],
)
def test_a_fault_spec_reads_as_written(text: str, fault: Fault) -> None:
    assert parse_fault(text) == fault
    assert parse_fault(fault.spec) == fault  # what is printed and logged reads back the same


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("worker:restart", "ROLE:KIND@OFFSET"),
        ("database:restart@2s", "role must be one of"),
        ("worker:explode@2s", "kind must be one of"),
        ("worker:restart@2h", "ROLE:KIND@OFFSET"),
        ("worker:restart@-2s", "ROLE:KIND@OFFSET"),
        ("worker:pause@2s+1..5s", "not a time"),
    ],
)
def test_a_bad_fault_spec_is_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says):
        parse_fault(text)


def test_random_schedule_is_reproducible_in_order_and_within_the_window() -> None:
    allowed = chaos_local.SUPPORTED
    faults = random_schedule(7, 20, 100.0, allowed)
    assert faults == random_schedule(7, 20, 100.0, allowed)
    assert faults != random_schedule(8, 20, 100.0, allowed)
    assert len(faults) == 20 and faults == sorted(faults)
    for f in faults:
        assert 10.0 <= f.at_s <= 80.0
        assert RANDOM_DURATION_S[0] <= f.duration_s <= RANDOM_DURATION_S[1]
        assert (f.role, f.kind) in allowed


def test_given_faults_and_random_ones_make_one_schedule_in_time_order() -> None:
    faults = schedule_from_args(["node:pause@50s", "worker:restart@1s"], 3, 2, 30.0, chaos_local.SUPPORTED)
    assert len(faults) == 4 and faults == sorted(faults)
    assert {"node:pause@50s+5s", "worker:restart@1s+5s"} <= {f.spec for f in faults}


def test_sgs_fault_lists_the_faults_unless_flags_give_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGS_FAULT", "worker:restart@2s, node:pause@4s+1s")
    assert [f.spec for f in schedule_from_args(None, 1, 0, 10.0, ())] == [
        "worker:restart@2s+5s",
        "node:pause@4s+1s",
    ]
    assert [f.spec for f in schedule_from_args(["sink:pause@3s"], 1, 0, 10.0, ())] == ["sink:pause@3s+5s"]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("broker:restart@5s", "in memory"),
        ("node:stop@5s", "pause the node instead"),
        ("worker:disconnect@5s", "loopback"),
    ],
)
def test_the_local_target_refuses_what_it_cannot_undo_saying_why(spec: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says):
        check_supported([parse_fault(spec)], chaos_local.refused, "local")


def test_the_local_target_takes_the_faults_the_bench_survives() -> None:
    faults = [
        parse_fault(s) for s in ("worker:restart@1s", "worker:stop@2s", "node:pause@3s", "sink:restart@4s")
    ]
    check_supported(faults, chaos_local.refused, "local")


# --- the local target, on real processes ------------------------------------------------------------------------


def _state(pid: int) -> str:
    """The process state letter of /proc/<pid>/stat (T: stopped by a signal)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def sleepers(tmp_path: Path):
    children = [Child("worker", SLEEPER), Child("node", SLEEPER)]
    for child in children:
        launch(child, {}, tmp_path)
    yield children
    for child in children:
        assert child.proc is not None
        child.proc.kill()
        child.proc.wait()
        assert child.log is not None
        child.log.close()


def _runner(
    faults: list[str], children: list[Child], tmp_path: Path
) -> tuple[Runner, chaos_local.LocalTarget]:
    target = chaos_local.LocalTarget(children, tmp_path)
    return Runner([parse_fault(f) for f in faults], target, 1, structlog.get_logger("test")), target


def test_a_killed_worker_is_started_again_and_is_not_reported_as_dead(sleepers, tmp_path: Path) -> None:
    worker = sleepers[0]
    assert worker.proc is not None
    first = worker.proc
    runner, target = _runner(["worker:restart@0s+0.3s"], sleepers, tmp_path)
    runner.start()
    wait_until(runner.done, 30, "the fault applied and undone")
    assert first.returncode == -9  # SIGKILL
    assert worker.proc is not first and worker.proc.poll() is None
    assert target.exited() is None
    (entry,) = runner.applied
    assert entry["victim"] == "worker" and entry["pid"] == first.pid and entry["new_pid"] == worker.proc.pid
    assert runner.errors == []


def test_a_child_that_dies_on_its_own_is_still_reported(sleepers, tmp_path: Path) -> None:
    _, target = _runner([], sleepers, tmp_path)
    node = sleepers[1]
    assert node.proc is not None
    node.proc.kill()
    node.proc.wait()
    assert target.exited() is node


def test_stopping_the_runner_mid_pause_lets_the_process_go_on(sleepers, tmp_path: Path) -> None:
    node = sleepers[1]
    assert node.proc is not None
    runner, _ = _runner(["node:pause@0s+600s", "worker:restart@1s"], sleepers, tmp_path)
    runner.start()
    wait_until(lambda: _state(node.proc.pid) == "T", 30, "the node paused")  # type: ignore[union-attr]
    runner.finish()
    assert runner.done()
    assert _state(node.proc.pid) != "T"
    assert [a["fault"] for a in runner.applied] == ["node:pause@0s+600s"]  # the worker fault never started
    assert runner.applied[0]["resumed"] == "SIGCONT"


# --- the compose target -----------------------------------------------------------------------------------------


def test_sgs_chaos_without_a_docker_engine_exits_2_saying_so(tmp_path: Path) -> None:
    socket = f"unix://{tmp_path}/docker.sock"
    done = subprocess.run(
        [sys.executable, "-m", "sgs", "chaos", "--fault", "worker:restart@1s"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "DOCKER_HOST": socket},
        timeout=60,
    )
    assert done.returncode == 2
    assert f"no Docker engine at {socket}; start one or set DOCKER_HOST" in done.stderr


def test_sgs_chaos_refuses_a_bad_schedule_before_looking_for_docker() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sgs", "chaos", "--fault", "worker:restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "ROLE:KIND@OFFSET" in done.stderr


def test_every_service_sgs_chaos_targets_is_in_docker_compose_yml() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for role, names in chaos_compose.ROLE_SERVICES.items():
        for name in names:
            assert name in services, f"{role}: {name} is not a service of docker-compose.yml"


def test_every_broker_and_federation_service_of_docker_compose_yml_has_a_role() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    targeted = {name for names in chaos_compose.ROLE_SERVICES.values() for name in names}
    brokers = {n for n, s in services.items() if s.get("image", "").startswith("apache/kafka:")}
    federation = {n for n, s in services.items() if s.get("command", [None])[0] in ("node", "worker", "sink")}
    assert brokers | federation == targeted
