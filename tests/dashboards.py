"""Scout's Grafana dashboards as data: every panel query, with Grafana's variables and macros substituted the
way Grafana does before it sends the query (a fixed time range), for the tests that run them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "observability" / "grafana" / "dashboards"
PROMETHEUS_UID = "prometheus"
POSTGRES_UID = "scout-postgres"

# What Grafana puts in place of its PromQL variables for a one-hour range.
PROMQL_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
TIME_FILTER = re.compile(r"\$__timeFilter\(\s*([^)]+?)\s*\)")


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref_id: str
    datasource: str  # the datasource uid
    text: str  # PromQL or SQL as written in the dashboard

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard file by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))  # panels inside collapsed rows
    return found


def queries() -> Iterator[Query]:
    for dashboard in dashboards().values():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                uid = (target.get("datasource") or panel["datasource"])["uid"]
                text = target.get("expr") if uid == PROMETHEUS_UID else target.get("rawSql")
                yield Query(dashboard["title"], panel["title"], target["refId"], uid, str(text))


def promql(query: Query) -> str:
    text = query.text
    for variable, value in PROMQL_VARIABLES.items():
        text = text.replace(variable, value)
    return text


def sql(query: Query, start: datetime, end: datetime) -> str:
    """The SQL Grafana's PostgreSQL datasource sends for the range [start, end]."""
    text = TIME_FILTER.sub(lambda m: f"{m.group(1)} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'",
                           query.text)
    text = text.replace("$__timeFrom()", f"'{start.isoformat()}'").replace("$__timeTo()", f"'{end.isoformat()}'")
    if "$" in text:
        raise ValueError(f"{query.name}: a Grafana macro or variable this helper does not know: {text}")
    return text
