"""The status page in a real headless Chromium against the pipeline as processes (`scout api`, `scout worker`,
`scout scheduler` on a real Kafka and PostgreSQL): it loads with no console error, shows what SQL shows for the
same window, moves when traffic flows, and shows a critical quality alert, with its runbook link, once the
scheduler's quality checks open one.

Set SCOUT_STATUS_SCREENSHOT=docs/status-page.png to write the README's screenshot from the last test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from cli.processes import Children, child_env
from cli.services import free_port
from scout.kafka import ensure_topics
from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.browser import chromium, console_errors
from tests.e2e.workers import stop_and_show_logs, wait_api_ready
from tests.factories import cli_token

LAYERS = ("received", "landed", "silvered", "quarantined")
FIRST_BATCH = 40


@dataclass
class Site:
    url: str
    dsn: str
    topic: str
    ingest_token: str
    read_token: str
    browser: webdriver.Chrome
    sent: int = 0

    def post(self, count: int, **override: Any) -> None:
        """``count`` more simulated transactions, each answered 202."""
        gen = Generator(seed=7)
        with httpx.Client(base_url=self.url, timeout=30,
                          headers={"Authorization": f"Bearer {self.ingest_token}"}) as client:
            for n in range(self.sent, self.sent + count):
                response = client.post("/v1/transactions", json={**gen.transaction(n), **override})
                assert response.status_code == 202, response.text
        self.sent += count


@pytest.fixture(scope="module")
def site(postgres, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory  # type: ignore[no-untyped-def]
         ) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("status-page")
    dsn = postgres.fresh_database()
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(database_url=dsn, kafka_bootstrap=kafka_bootstrap,  # type: ignore[arg-type]
                        topic=f"pos.transactions.v1.{suffix}", dead_letter_topic=f"pos.transactions.dlq.v1.{suffix}",
                        stream_app_id=f"scout-status-{suffix}", data_dir=work / "scout")
    ensure_topics(settings)
    env = child_env(
        database_url=dsn, kafka_bootstrap=kafka_bootstrap, topic=settings.topic,
        dead_letter_topic=settings.dead_letter_topic, stream_app_id=settings.stream_app_id,
        api_port=str(free_port()), worker_web_port=str(free_port()), data_dir=str(settings.data_dir),
        worker_metrics_port="0", scheduler_metrics_port="0", gold_refresh_interval_s="1", quality_interval_s="2",
        silver_idle_interval_s="0.1", bronze_batch_within_s="0.2",
    )
    _, ingest = cli_token(env, "--name", "status page traffic", "--all-stores", "--rate-limit", "100000")
    _, read = cli_token(env, "--name", "on-call", "--all-stores", "--scope", "read")
    children = Children(env, settings.data_dir / "logs")
    for name in ("api", "worker", "scheduler"):
        children.start(name, name)
    url = f"http://127.0.0.1:{env['SCOUT_API_PORT']}"
    try:
        wait_api_ready(url)
        with chromium(work) as browser:
            site = Site(url, dsn, settings.topic, ingest, read, browser)
            site.post(FIRST_BATCH)
            eventually(lambda: _sql(dsn, "SELECT count(*) FROM silver.transactions")[0][0],
                       until=lambda n: n == FIRST_BATCH, timeout=120, what="the first transactions in silver")
            browser.get(f"{url}/status?interval_ms=500#token={read}")
            yield site
    finally:
        stop_and_show_logs(children)


def _sql(dsn: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def _page(browser: webdriver.Chrome) -> dict[str, Any]:
    """What the page shows now: its window, the totals per layer, the partitions, the alerts and the jobs."""
    return browser.execute_script("""
        const value = (node) => node && node.dataset.value !== undefined ? Number(node.dataset.value) : null;
        const text = (row, field) => row.querySelector(`[data-field="${field}"]`).textContent;
        return {
          state: document.getElementById("state").dataset.state,
          since: document.body.dataset.since || null,
          totals: Object.fromEntries(["received", "landed", "silvered", "quarantined"].map(
            (f) => [f, value(document.querySelector(`#throughput tfoot [data-field="${f}"]`))])),
          partitions: [...document.querySelectorAll("#partitions tbody tr")].map((row) => [
            Number(row.dataset.key), value(row.querySelector('[data-field="landed_offset"]')),
            value(row.querySelector('[data-field="end_offset"]'))]),
          alerts: [...document.querySelectorAll("#alerts tbody tr")].map((row) => ({
            severity: text(row, "severity"), rule: text(row, "rule"),
            runbook: row.querySelector('[data-field="runbook"] a').getAttribute("href")})),
          jobs: [...document.querySelectorAll("#jobs tbody tr")].map((row) => row.dataset.key),
        };""")


def _sql_figures(dsn: str, topic: str, since: str) -> dict[str, Any]:
    (totals,) = _sql(dsn, "SELECT coalesce(sum(received), 0), coalesce(sum(landed), 0), coalesce(sum(silvered), 0), "
                          "coalesce(sum(quarantined), 0) FROM monitor.pipeline_throughput(%s)", [since])
    return {"totals": dict(zip(LAYERS, map(int, totals), strict=True)),
            "landed": [tuple(r) for r in _sql(dsn, "SELECT kafka_partition, next_offset FROM ops.stream_offsets "
                                                   "WHERE kafka_topic = %s ORDER BY 1", [topic])]}


def _shown_matches_sql(site: Site) -> tuple[dict[str, Any], dict[str, Any] | None]:
    shown = _page(site.browser)
    if shown["since"] is None:
        return shown, None
    return shown, _sql_figures(site.dsn, site.topic, shown["since"])


def _same(pair: tuple[dict[str, Any], dict[str, Any] | None]) -> bool:
    shown, sql = pair
    return sql is not None and shown["totals"] == sql["totals"] and \
        [(p, landed) for p, landed, _ in shown["partitions"]] == sql["landed"]


def test_the_page_loads_goes_live_and_logs_no_error(site: Site) -> None:
    eventually(lambda: _page(site.browser)["state"], until=lambda s: s == "live", timeout=30, what="the page live")
    assert site.browser.title == "Scout status"
    assert "#token" not in site.browser.current_url  # the token left the address bar
    assert console_errors(site.browser) == []


def test_the_page_shows_what_sql_shows_for_the_same_window(site: Site) -> None:
    shown, sql = eventually(lambda: _shown_matches_sql(site), until=_same, timeout=60,
                            what="the page's figures equal to SQL's")
    assert sql is not None
    assert sql["totals"]["silvered"] == FIRST_BATCH and sql["totals"]["received"] == FIRST_BATCH
    assert sum(landed for _, landed in sql["landed"]) == FIRST_BATCH  # one record per transaction
    ends = {p: end for p, _, end in shown["partitions"]}
    assert sum(ends.values()) == FIRST_BATCH  # the broker's end offsets: nothing waiting
    assert {"gold-refresh", "quality-checks"} <= set(shown["jobs"])
    assert console_errors(site.browser) == []


def test_the_page_moves_when_traffic_flows(site: Site) -> None:
    before = eventually(lambda: _page(site.browser), until=lambda p: p["totals"]["silvered"] is not None,
                        timeout=30, what="the page's totals")["totals"]
    site.post(25)
    after = eventually(lambda: _shown_matches_sql(site),
                       until=lambda pair: _same(pair) and pair[0]["totals"]["silvered"] >= before["silvered"] + 25,
                       timeout=120, what="the page counting the new transactions as SQL does")[0]["totals"]
    assert after["received"] >= before["received"] + 25
    assert console_errors(site.browser) == []


def test_the_page_shows_a_critical_alert_when_one_opens(site: Site, tmp_path: Path) -> None:
    site.post(1, total_amount="9999.99")  # the lines do not add up to it: quarantined, line_sum_mismatch
    def critical(page: dict[str, Any]) -> list[dict[str, Any]]:
        return [a for a in page["alerts"] if a["rule"] == "line_sum_mismatch" and a["severity"] == "critical"]

    shown = eventually(lambda: _page(site.browser), until=critical, timeout=120, what="the critical alert on the page")
    opened = _sql(site.dsn, "SELECT rule FROM ops.alerts WHERE resolved_at IS NULL AND severity = 'critical'")
    assert ("line_sum_mismatch",) in opened
    assert critical(shown)[0]["runbook"] == "/status/runbook#quality-line-sum-mismatch"
    assert shown["alerts"][0]["severity"] == "critical"  # critical first
    assert eventually(lambda: _page(site.browser)["totals"]["quarantined"], until=lambda n: n == 1, timeout=60,
                      what="the quarantined transaction counted") == 1
    screenshot = Path(os.environ.get("SCOUT_STATUS_SCREENSHOT") or tmp_path / "status-page.png")
    assert site.browser.save_screenshot(str(screenshot))
    assert console_errors(site.browser) == []
    site.browser.find_element(By.CSS_SELECTOR, '#alerts a[href$="#quality-line-sum-mismatch"]').click()
    section = eventually(lambda: site.browser.find_elements(By.ID, "quality-line-sum-mismatch"), until=bool,
                         timeout=30, what="the runbook section")
    assert section[0].text == "quality-line-sum-mismatch"
    assert console_errors(site.browser) == []
