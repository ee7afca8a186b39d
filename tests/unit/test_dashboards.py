"""Every Grafana dashboard is valid Grafana JSON, queries only what exists, and together they show every
metric Scout exports and every monitoring view. (Queries run for real: tests/e2e/test_observability.py for
PromQL, tests/integration/test_dashboard_sql.py for SQL.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards import POSTGRES_UID, PROMETHEUS_UID, dashboards, panels, promql, queries
from tests.unit.test_deployment_files import GRAFANA_DIR, METRIC_TOKEN, exported_series, run_promtool

REQUIRED = {"Pipeline overview", "Data quality", "Gold freshness", "Business KPIs"}
MONITOR_VIEWS = {"v_pipeline_throughput", "v_ingest_latency", "v_gold_freshness", "v_etl_performance"}
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "table", "bargauge", "barchart", "piechart", "text"}
RELATION = re.compile(r"\b(?:FROM|JOIN)\s+([a-z_]+)\.([a-z_]+)", re.IGNORECASE)


def _datasources() -> dict[str, dict[str, Any]]:
    provisioned = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml").read_text())
    return {ds["uid"]: ds for ds in provisioned["datasources"]}


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    boards = dashboards()
    assert {b["title"] for b in boards.values()} >= REQUIRED
    uids = [b["uid"] for b in boards.values()]
    assert len(uids) == len(set(uids))
    for board in boards.values():
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
        assert board["schemaVersion"] >= 36 and board["editable"] is False
        assert board["time"]["from"].startswith("now-")


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_panels_are_valid(name: str) -> None:
    board = dashboards()[name]
    datasources = _datasources()
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in panels(board):
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel.get("description"), panel["title"]
        source = datasources[panel["datasource"]["uid"]]  # every datasource is a provisioned one
        assert panel["datasource"]["type"] == source["type"], panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
            if source["uid"] == PROMETHEUS_UID:
                assert target["expr"].strip(), panel["title"]
            else:
                assert target["rawSql"].strip() and target["format"] in {"table", "time_series"}, panel["title"]
                if target["format"] == "time_series":
                    assert " AS time" in target["rawSql"], f"{panel['title']}: a time series needs a time column"


def test_promql_panels_use_only_exported_metrics_and_show_every_one() -> None:
    exported = exported_series()
    shown: set[str] = set()
    for query in queries():
        if query.datasource == PROMETHEUS_UID:
            used = set(METRIC_TOKEN.findall(query.text))
            assert used <= exported, (query.name, used - exported)
            shown |= used
    # every metric family appears on a dashboard, by one of its series (a histogram by _bucket or _sum/_count)
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", s) for s in exported}
    missing = {f for f in families if not any(s == f or s.startswith(f + "_") for s in shown)}
    assert not missing, f"no panel shows {sorted(missing)}"


def test_sql_panels_read_only_gold_and_monitor_and_show_every_monitoring_view() -> None:
    read: set[tuple[str, str]] = set()
    for query in queries():
        if query.datasource == POSTGRES_UID:
            assert query.text.lstrip().upper().startswith(("SELECT", "WITH")), query.name
            relations = set(RELATION.findall(query.text))
            assert relations, query.name
            assert {schema for schema, _ in relations} <= {"gold", "monitor"}, (query.name, relations)
            read |= relations
    assert {("monitor", view) for view in MONITOR_VIEWS} <= read
    assert ("gold", "dashboard_summary") in read


def test_every_promql_panel_query_parses(tmp_path: Path) -> None:
    rules = [{"record": f"dashboard:query_{n}", "expr": promql(q)}
             for n, q in enumerate(queries()) if q.datasource == PROMETHEUS_UID]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}), encoding="utf-8")
    run_promtool("check", "rules", path)
