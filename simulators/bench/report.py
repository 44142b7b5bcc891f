"""What `sgs bench` prints and draws: percentiles, the machine it ran on, the text report and the chart."""

from __future__ import annotations

import contextlib
import platform
import subprocess
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgs.config import TIERS

if TYPE_CHECKING:
    from simulators.bench.run import Feed
from simulators.bench.accounting import Accounting

PERCENTILES = (50, 95, 99)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 by nearest rank (None when there is nothing to measure)."""
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for p in PERCENTILES:
        out[f"p{p}"] = (
            round(ordered[min(len(ordered) - 1, max(0, -(-p * len(ordered) // 100) - 1))], 3)
            if ordered
            else None
        )
    return out


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "cpus": _cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu_model"] = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
            None,
        )
        meminfo = Path("/proc/meminfo").read_text().split()
        info["memory_gib"] = round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1)
    except (OSError, ValueError):
        pass
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    return info


def _cpu_count() -> int | None:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def render(results: dict[str, Any], rec: Accounting) -> str:
    """The summary table."""
    lat = results["latency_s"]
    lines = [
        "",
        f"  records                     {results['records']:>12,}   settled {results['settled']:,}",
        f"  (a) raw produce             {results['raw_produce_records_per_s']:>12,.1f} records/s"
        f"   ({results['record_bytes_mean']:.0f} bytes each)",
        f"  (a) raw pass-through        {results['raw_records_per_s']:>12,.1f} records/s",
        f"  (b) end to end              {results['e2e_records_per_s']:>12,.1f} records/s"
        f"   in {results['elapsed_s']:,.1f} s (node took {results['node_records_per_s']:,.1f}/s)",
        f"      ratio (b)/(a)           {results['ratio'] if results['ratio'] is not None else '-':>12}",
    ]
    cpu = results["cpu_ms_per_record"]
    if cpu:
        lines.append(
            f"      CPU ms per record       {sum(cpu.values()):.2f} = "
            + "  ".join(f"{name} {ms:.2f}" for name, ms in sorted(cpu.items(), key=lambda kv: -kv[1]))
        )
    for tier in TIERS:
        p, q = lat[tier], results["latency_not_held_s"][tier]
        lines += [
            f"  (c) latency {tier:<11}     p50 {_s(p['p50'])}  p95 {_s(p['p95'])}  p99 {_s(p['p99'])}",
            f"      not held (D13)          p50 {_s(q['p50'])}  p95 {_s(q['p95'])}  p99 {_s(q['p99'])}",
        ]
    hold = results["settings"]["unknown_subject_hold_s"]
    lines.append(
        f"  (c) D13 hold of {hold:g} s        "
        + "  ".join(
            f"{tier} {results['held_records'][tier]:,} held, p50 {_s(results['latency_held_s'][tier]['p50'])}"
            for tier in TIERS
        )
    )
    d = results["decision_latency_s"]
    lines.append(
        f"  (c) decisions, taken to answered  p50 {_s(d['p50'])}  p95 {_s(d['p95'])}  p99 {_s(d['p99'])}"
        f"   ({results['decisions_answered']:,} answered)"
    )
    lines.append("  (c) by hop, not held (from the node's receipts)")
    for hop, h in results["latency_by_hop_s"].items():
        lines.append(f"      {hop:<24}p50 {_s(h['p50'])}  p95 {_s(h['p95'])}  p99 {_s(h['p99'])}")
    lines += [
        f"  (d) relayed                 provincial {rec.relayed.get('provincial', 0):,}  national "
        f"{rec.relayed.get('national', 0):,}  withdrawn {sum(rec.withdrawn.values()):,}  "
        f"revoked before relay {sum(rec.revoked_before_relay.values()):,}",
        f"      rejected {rec.rejected:,}  duplicates absorbed {rec.absorbed:,}  "
        f"provincial only (D11) {rec.not_relayed_national:,}",
        f"      withdrawn by reason {_counts(rec.withdrawal_reasons)}",
        f"      decisions applied {_counts(rec.decisions_applied)}  refused {_counts(rec.decisions_refused)}",
        f"      LOST {rec.lost:,}   DUPLICATED {rec.duplicated:,}",
    ]
    lines += [
        f"  fault {a['fault']} on {a.get('victim', '-')}: {a.get('error') or 'applied and undone'}"
        for a in results["chaos"]["applied"]
    ]
    lines += [f"      e.g. {s}" for s in rec.samples[:10]]
    verdict = "OK" if results["status"] == "ok" else "FAILED: " + "; ".join(results["failures"])
    lines += [f"  {verdict}", ""]
    return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counter.items())) or "-"


def _s(value: float | None) -> str:
    return f"{value:>8.2f}s" if value is not None else "       -"


def plot(
    path: Path,
    feed: Feed,
    settle_times: list[float],
    latencies: dict[str, list[tuple[float, float]]],
    raw_rate: float,
) -> None:
    """Throughput (records/s taken by the node and settled, per second) and latency (p50/p95 per 5 s of
    submission, per sink) over the run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = feed.started
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for label, times in (
        ("taken by the node", [a[1] for a in feed.answers if a is not None]),
        ("settled", settle_times),
    ):
        per_second = Counter(int(t - t0) for t in times)
        if per_second:
            xs = list(range(max(per_second) + 1))
            top.plot(xs, [per_second.get(x, 0) for x in xs], ".-", label=label, linewidth=1)
    top.axhline(
        raw_rate, color="grey", linestyle="--", linewidth=1, label=f"raw pass-through {raw_rate:,.0f}/s"
    )
    top.set_ylabel("records/s")
    top.set_yscale("symlog")
    top.set_title("sgs bench: throughput and latency")
    top.legend(loc="upper right", fontsize=8)
    for tier, points in latencies.items():
        buckets: dict[int, list[float]] = {}
        for submitted, latency in points:
            buckets.setdefault(int((submitted - t0) // 5) * 5, []).append(latency)
        xs = sorted(buckets)
        for p, style in ((50, "-"), (95, ":")):
            ys = [percentiles(buckets[x])[f"p{p}"] for x in xs]
            bottom.plot(xs, ys, "." + style, label=f"{tier} p{p}", linewidth=1)
    bottom.set_xlabel("seconds since the first post")
    bottom.set_ylabel("latency, s (submitted -> sink)")
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
