"""Grafana dashboards of the federation, as code (grafana-foundation-sdk); writes deploy/grafana/dashboards/*.json.

    python deploy/grafana/build.py          # regenerate the checked-in JSON
    python deploy/grafana/build.py --check  # exit 1 if the checked-in JSON differs from this code

The JSON is checked in so Grafana's file provisioning (deploy/grafana/provisioning) needs no Python; a test keeps
it equal to this generator. Metric names: docs/metrics.md. Thresholds drawn on panels match the alert rules in
deploy/prometheus/rules/sgs-alerts.yml.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, StackingConfig, VizLegendOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = DataSourceRef(
    type_val="prometheus", uid="sgs-prometheus"
)  # provisioning/datasources/prometheus.yml
DISTRICT = 'district=~"$district"'
Query = tuple[str, str]  # (PromQL, legend)


def query(
    expr: str, legend: str = "", *, ref: str = "A", instant: bool = False, heatmap: bool = False
) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref).datasource(DATASOURCE)
    if heatmap:
        q = q.format(PromQueryFormat.HEATMAP)
    if instant:
        q = q.instant()
    return q


def graph(
    title: str, unit: str, *queries: Query, description: str = "", stacked: bool = False, width: int = 12
):
    panel = (
        timeseries.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(width)
        .height(8)
        .legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
        )
    )
    if description:
        panel = panel.description(description)
    if stacked:
        panel = panel.stacking(StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(30)
    for ref, (expr, legend) in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(query(expr, legend, ref=ref))
    return panel


def single(title: str, unit: str, expr: str, *, red_above: float | None = None, description: str = ""):
    panel = (
        stat.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(4)
        .height(4)
        .graph_mode(BigValueGraphMode.AREA)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(query(expr))
    )
    if description:
        panel = panel.description(description)
    if red_above is not None:
        panel = panel.thresholds(
            dashboard.ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps([Threshold(value=None, color="green"), Threshold(value=red_above, color="red")])
        )
    return panel


def bars(title: str, unit: str, expr: str, legend: str, *, heatmap: bool = False, description: str = ""):
    """Bar gauge of an instant query over the dashboard's range: one bar per series (or histogram bucket)."""
    panel = (
        bargauge.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(12)
        .height(8)
        .orientation(VizOrientation.VERTICAL if heatmap else VizOrientation.HORIZONTAL)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(query(expr, legend, instant=True, heatmap=heatmap))
    )
    if description:
        panel = panel.description(description)
    return panel


def tabular(title: str, expr: str, description: str = ""):
    panel = (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .span(12)
        .height(8)
        .show_header(True)
        .with_target(query(expr, instant=True).format(PromQueryFormat.TABLE))
    )
    if description:
        panel = panel.description(description)
    return panel


def district_variable() -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable("district")
        .label("区县 district")
        .datasource(DATASOURCE)
        .query("label_values(sgs_node_records_received_total, district)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )


def base(uid: str, title: str, description: str, *, districts: bool = False) -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["sgs", "双公示"])
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .readonly()
    )
    if districts:
        board = board.with_variable(district_variable())
    return board


def federation_overview() -> dashboard.Dashboard:
    return (
        base(
            "sgs-overview", "双公示 federation overview", "Throughput, outcomes and health of every service."
        )
        .with_row(dashboard.Row("Now"))
        .with_panel(single("Submitted /s", "reqps", "sum(rate(sgs_node_records_received_total[5m]))"))
        .with_panel(
            single(
                "Accepted /s",
                "reqps",
                'sum(rate(sgs_worker_records_total{stage="timeliness", outcome="accepted"}[5m]))',
            )
        )
        .with_panel(
            single(
                "Late share (D5, 1h)",
                "percentunit",
                'sum(rate(sgs_worker_late_total{rule="D5"}[1h]))'
                ' / sum(rate(sgs_worker_records_total{stage="timeliness", outcome="accepted"}[1h]))',
                red_above=0.10,
            )
        )
        .with_panel(
            single(
                "Rejected share (1h)",
                "percentunit",
                "sum(district:sgs_rejected:rate1h) / sum(district:sgs_node_received:rate1h)",
                red_above=0.05,
            )
        )
        .with_panel(single("Relayed /s", "reqps", "sum(rate(sgs_worker_relayed_total[5m]))"))
        .with_panel(
            single("Services down", "none", 'count(up{job=~"sgs-.*"} == 0) or vector(0)', red_above=1)
        )
        .with_row(dashboard.Row("Flow"))
        .with_panel(
            graph(
                "Records received by district",
                "reqps",
                (
                    "sum by (district) (rate(sgs_node_records_received_total[$__rate_interval]))",
                    "{{district}}",
                ),
                stacked=True,
            )
        )
        .with_panel(
            graph(
                "Worker outcomes by stage",
                "reqps",
                (
                    "sum by (stage, outcome) (rate(sgs_worker_records_total[$__rate_interval]))",
                    "{{stage}} {{outcome}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Stored by the sinks",
                "reqps",
                ("sum by (tier) (rate(sgs_sink_upserts_total[$__rate_interval]))", "{{tier}}"),
            )
        )
        .with_panel(
            graph(
                "Worker stage latency p95",
                "s",
                (
                    "histogram_quantile(0.95, sum by (stage, le)"
                    " (rate(sgs_worker_stage_latency_seconds_bucket[$__rate_interval])))",
                    "{{stage}}",
                ),
            )
        )
        .with_row(dashboard.Row("Targets"))
        .with_panel(tabular("Scrape targets (1 = up)", 'up{job=~"sgs-.*"}'))
    )


def timeliness() -> dashboard.Dashboard:
    accepted = f'sgs_worker_records_total{{stage="timeliness", outcome="accepted", {DISTRICT}}}'
    taken = f"sgs_node_records_taken_total{{{DISTRICT}}}"
    late_dept = f'sgs_worker_late_total{{rule="D5", {DISTRICT}}}'
    return (
        base(
            "sgs-timeliness",
            "Timeliness: 7 and 2 working days (D5, D6)",
            "On-time share per district and department, and the distribution of working days taken (event time).",
            districts=True,
        )
        .with_row(dashboard.Row("On-time share (D5: published within 7 working days of the decision)"))
        .with_panel(
            graph(
                "On-time share by district (1h)",
                "percentunit",
                (f"1 - district:sgs_late_share:ratio_rate1h{{{DISTRICT}}}", "{{district}}"),
            )
        )
        .with_panel(
            graph(
                "On-time share by department (1h)",
                "percentunit",
                (
                    f"1 - ((sum by (district, department) (rate({late_dept}[1h]))"
                    f" or sum by (district, department) (rate({taken}[1h])) * 0)"
                    f" / sum by (district, department) (rate({taken}[1h])))",
                    "{{district}} {{department}}",
                ),
                description="Late (D5) over records the node took, per department; 1 when none were late.",
            )
        )
        .with_panel(
            graph(
                "Late records by district and rule",
                "reqps",
                (
                    f"sum by (district, rule) (rate(sgs_worker_late_total{{{DISTRICT}}}[$__rate_interval]))",
                    "{{district}} {{rule}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Accepted by district",
                "reqps",
                (f"sum by (district) (rate({accepted}[$__rate_interval]))", "{{district}}"),
            )
        )
        .with_row(dashboard.Row("Working days taken (event time)"))
        .with_panel(
            bars(
                "D5: working days from decision to submission",
                "none",
                'sum by (le) (increase(sgs_worker_working_days_bucket{rule="D5"}[$__range]))',
                "{{le}}",
                heatmap=True,
                description="Records per bucket (≤ N working days) over the dashboard's range; limit 7.",
            )
        )
        .with_panel(
            bars(
                "D6: working days from portal publication to submission",
                "none",
                'sum by (le) (increase(sgs_worker_working_days_bucket{rule="D6"}[$__range]))',
                "{{le}}",
                heatmap=True,
                description="Records per bucket over the dashboard's range; limit 2 (D6).",
            )
        )
        .with_panel(
            graph(
                "Working days p50 / p90",
                "none",
                (
                    "histogram_quantile(0.5, sum by (rule, le)"
                    " (rate(sgs_worker_working_days_bucket[$__rate_interval])))",
                    "p50 {{rule}}",
                ),
                (
                    "histogram_quantile(0.9, sum by (rule, le)"
                    " (rate(sgs_worker_working_days_bucket[$__rate_interval])))",
                    "p90 {{rule}}",
                ),
            )
        )
        .with_panel(
            graph(
                "D6 at the node: portal to submission p90 by district",
                "none",
                (
                    "histogram_quantile(0.9, sum by (district, le) (rate("
                    f"sgs_node_portal_to_submit_working_days_bucket{{{DISTRICT}}}[$__rate_interval])))",
                    "{{district}}",
                ),
            )
        )
    )


def data_quality() -> dashboard.Dashboard:
    return (
        base(
            "sgs-quality",
            "Data quality: rejections by rule (D12)",
            "What is refused, where (node or worker) and by which rule.",
            districts=True,
        )
        .with_panel(
            graph(
                "Rejected share by district (1h)",
                "percentunit",
                (f"district:sgs_rejected_share:ratio_rate1h{{{DISTRICT}}}", "{{district}}"),
            )
        )
        .with_panel(
            graph(
                "Rejected at the worker by stage",
                "reqps",
                (
                    'sum by (stage) (rate(sgs_worker_records_total{outcome="rejected", '
                    f"{DISTRICT}}}[$__rate_interval]))",
                    "{{stage}}",
                ),
            )
        )
        .with_panel(
            bars(
                "Rejected at the node by rule (dashboard range)",
                "none",
                f"sort_desc(sum by (rule) (increase(sgs_node_records_rejected_total{{{DISTRICT}}}[$__range])))",
                "{{rule}}",
            )
        )
        .with_panel(
            tabular(
                "Rejections by district, department and rule (dashboard range)",
                "sort_desc(sum by (district, department, rule)"
                f" (increase(sgs_node_records_rejected_total{{{DISTRICT}}}[$__range])))",
            )
        )
        .with_panel(
            graph(
                "Refused at the sinks by rule",
                "reqps",
                ("sum by (tier, rule) (rate(sgs_sink_refused_total[$__rate_interval]))", "{{tier}} {{rule}}"),
            )
        )
        .with_panel(
            graph(
                "Node requests refused (401/403)",
                "reqps",
                ("sum(rate(sgs_node_unauthorized_total[$__rate_interval]))", "401"),
                (
                    f"sum by (district) (rate(sgs_node_forbidden_total{{{DISTRICT}}}[$__rate_interval]))",
                    "403 {{district}}",
                ),
            )
        )
    )


def reconciliation() -> dashboard.Dashboard:
    return (
        base(
            "sgs-reconciliation",
            "Reconciliation with the legal-person and population bases (D13)",
            "Outcomes of checking each record's counterpart against 市法人库 / 市人口库.",
        )
        .with_panel(
            single(
                "Mismatch share (1h)",
                "percentunit",
                '(sum(rate(sgs_worker_reconciliation_total{outcome!~"MATCHED|NOT_CHECKED"}[1h])) or vector(0))'
                " / sum(rate(sgs_worker_reconciliation_total[1h]))",
            )
        )
        .with_panel(
            single(
                "Held, subject not yet known /s",
                "reqps",
                'sum(rate(sgs_worker_records_total{stage="reconcile", outcome="held"}[5m]))',
            )
        )
        .with_panel(
            single(
                "Not checked share (1h)",
                "percentunit",
                '(sum(rate(sgs_worker_reconciliation_total{outcome="NOT_CHECKED"}[1h])) or vector(0))'
                " / sum(rate(sgs_worker_reconciliation_total[1h]))",
            )
        )
        .with_panel(
            graph(
                "Outcomes",
                "reqps",
                (
                    "sum by (outcome) (rate(sgs_worker_reconciliation_total[$__rate_interval]))",
                    "{{outcome}}",
                ),
                stacked=True,
            )
        )
        .with_panel(
            bars(
                "Outcomes by kind (dashboard range)",
                "none",
                "sum by (outcome, kind) (increase(sgs_worker_reconciliation_total[$__range]))",
                "{{kind}} {{outcome}}",
            )
        )
    )


def relays_and_sinks() -> dashboard.Dashboard:
    return (
        base(
            "sgs-relays",
            "Relays and sinks (D10, D11, D14)",
            "What the worker relays to the provincial and national tiers and what each sink holds.",
        )
        .with_panel(
            graph(
                "Relayed by tier and kind",
                "reqps",
                (
                    "sum by (tier, kind) (rate(sgs_worker_relayed_total[$__rate_interval]))",
                    "{{tier}} {{kind}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Withdrawals sent by tier and reason",
                "reqps",
                (
                    "sum by (tier, reason) (rate(sgs_worker_withdrawn_total[$__rate_interval]))",
                    "{{tier}} {{reason}}",
                ),
            )
        )
        .with_panel(
            graph(
                "Relayed vs stored per tier (10m)",
                "reqps",
                ("tier:sgs_worker_relayed:rate10m", "relayed {{tier}}"),
                ("tier:sgs_sink_stored:rate10m", "stored {{tier}}"),
                description="A tier relayed to but storing nothing is the SgsRelayStalled alert.",
            )
        )
        .with_panel(
            graph(
                "Records held by tier and kind",
                "short",
                ("sum by (tier, kind) (sgs_sink_records_held)", "{{tier}} {{kind}}"),
            )
        )
        .with_panel(
            graph(
                "Sink writes",
                "reqps",
                ("sum by (tier) (rate(sgs_sink_upserts_total[$__rate_interval]))", "upserts {{tier}}"),
                ("sum by (tier) (rate(sgs_sink_duplicates_total[$__rate_interval]))", "duplicates {{tier}}"),
                (
                    "sum by (tier) (rate(sgs_sink_withdrawals_total[$__rate_interval]))",
                    "withdrawals {{tier}}",
                ),
                ("sum by (tier) (rate(sgs_sink_poison_total[$__rate_interval]))", "poison {{tier}}"),
            )
        )
        .with_panel(
            graph(
                "Sink query duration p95",
                "s",
                (
                    "histogram_quantile(0.95, sum by (tier, le)"
                    " (rate(sgs_sink_query_duration_seconds_bucket[$__rate_interval])))",
                    "{{tier}}",
                ),
            )
        )
    )


def kafka_lag() -> dashboard.Dashboard:
    return (
        base(
            "sgs-kafka",
            "Kafka: consumer lag and delivery",
            "Consumer lag per group and partition (sgs lag-exporter), and the district nodes' outboxes.",
            districts=True,
        )
        .with_panel(
            graph(
                "Lag by group and topic",
                "short",
                ("sum by (group, topic) (sgs_consumer_lag)", "{{group}} {{topic}}"),
            )
        )
        .with_panel(
            graph(
                "Lag by partition",
                "short",
                ("sgs_consumer_lag", "{{group}} {{topic}}[{{partition}}]"),
            )
        )
        .with_panel(single("Lag exporter reaches Kafka", "none", "min(sgs_lag_exporter_up)"))
        .with_panel(
            single(
                "Oldest unsent record (all nodes)",
                "s",
                "max(sgs_node_outbox_oldest_age_seconds)",
                red_above=900,
            )
        )
        .with_panel(
            single(
                "Broker errors at the nodes /s",
                "reqps",
                "sum(rate(sgs_node_broker_errors_total[5m])) or vector(0)",  # no series until the first error
            )
        )
        .with_panel(
            graph(
                "Outbox depth by district",
                "short",
                (f"sgs_node_outbox_depth{{{DISTRICT}}}", "{{district}}"),
            )
        )
        .with_panel(
            graph(
                "Node send latency p95 by district",
                "s",
                (
                    "histogram_quantile(0.95, sum by (district, le)"
                    f" (rate(sgs_node_send_latency_seconds_bucket{{{DISTRICT}}}[$__rate_interval])))",
                    "{{district}}",
                ),
            )
        )
    )


DASHBOARDS: dict[str, Callable[[], dashboard.Dashboard]] = {
    "overview": federation_overview,
    "timeliness": timeliness,
    "quality": data_quality,
    "reconciliation": reconciliation,
    "relays": relays_and_sinks,
    "kafka": kafka_lag,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    encoder = JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False)
    rendered = {}
    for name, build in DASHBOARDS.items():
        board = build().build()
        for number, panel in enumerate(board.panels or [], start=1):
            panel.id_val = number  # stable ids: Grafana keys panel links and state by them
        rendered[f"{name}.json"] = encoder.encode(board) + "\n"
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the checked-in JSON differs")
    args = parser.parse_args(argv)
    rendered = render()
    stale = sorted(
        name
        for name, text in rendered.items()
        if not (OUT / name).exists() or (OUT / name).read_text() != text
    )
    if args.check:
        for name in stale:
            print(
                f"stale: deploy/grafana/dashboards/{name} (run python deploy/grafana/build.py)",
                file=sys.stderr,
            )
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (OUT / name).write_text(text)
    print(f"wrote {len(rendered)} dashboards to {OUT} ({len(stale)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
