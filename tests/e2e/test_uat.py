"""`scout uat` as a tester runs it, against `scout api`, `scout worker`, `scout scheduler` on Apache Kafka:
a run with faults passes and reports its counts; a run whose checker is told another fault plan fails
and says why."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from scout.settings import Settings
from simulator.generator import Generator
from tests.conftest import eventually
from tests.e2e.workers import Pipeline, pipeline_processes
from tests.factories import cli_token

FAULTS = "exact_resend=0.05,conflicting_duplicate=0.03,malformed_json=0.03,missing_field=0.03,bad_total=0.03," \
         "over_threshold=0.03,late_event=0.03,negative_quantity=0.02,misspelt_product=0.03,unknown_store=0.02"


UAT_FEED = ("--name", "uat feed", "--all-stores", "--rate-limit", "100000")


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    """A deployment that knows its products before UAT."""
    with pipeline_processes(settings, token=UAT_FEED, quality_interval_s="1",
                            prepare=lambda env: _import_catalogue(settings.data_dir / "catalogue.csv", env)) as running:
        yield running


def _import_catalogue(path: Path, env: dict[str, str]) -> None:
    with path.open("w", newline="") as out:
        csv.writer(out).writerows([("sku", "name", "brand", "category"), *(
            (p.product_id, p.name, p.brand, p.category) for p in Generator(17).products)])
    subprocess.run([sys.executable, "-m", "cli.main", "products", "import", str(path)], env=env,
                   check=True, capture_output=True, timeout=60)


def test_uat_on_a_fresh_deployment_judges_misspellings_only_against_products_it_had(
        settings: Settings, tmp_path: Path) -> None:
    """No catalogue: the products appear as lines with their SKUs arrive, so early misspellings have nothing to
    be linked to. The UAT passes and says how many misspellings it judged and how many it could not."""
    with pipeline_processes(settings, token=UAT_FEED, quality_interval_s="1") as pipeline:
        env = pipeline.env
        report = tmp_path / "fresh.json"
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "uat", "--url", pipeline.url, "--token", pipeline.token,
             "--database-url", env["SCOUT_DATABASE_URL"], "--rate", "20", "--duration", "10", "--seed", "5",
             "--faults", "misspelt_product=0.2", "--settle-timeout", "120", "--report", str(report)],
            env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    checks = {c["name"]: c for c in orjson.loads(report.read_bytes())["checks"]}
    detail = checks["faults_ended_where_expected"]["detail"]
    assert "misspellings judged against the products in the catalogue when each line was processed" in detail
    judged, unjudged = (int(part.split()[0]) for part in detail.rsplit(": ", 1)[1].split(", ")[:2])
    assert unjudged > 0 and judged + unjudged == checks["faults_ended_where_expected"]["checked"]


def _uat(env: dict[str, str], pipeline: Pipeline, report: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "uat", "--url", pipeline.url, "--token", pipeline.token,
         "--database-url", env["SCOUT_DATABASE_URL"], "--rate", "50", "--duration", "10", "--seed", "17",
         "--faults", FAULTS, "--settle-timeout", "120", "--report", str(report), *extra],
        env=env, capture_output=True, text=True, timeout=300, check=False)


def test_uat_passes_with_faults_then_fails_when_told_another_plan(
        pipeline: Pipeline, tmp_path: Path) -> None:
    running, env = pipeline, pipeline.env
    first = _uat(env, running, tmp_path / "uat.json", "--poison", "9")  # Kafka and topic from the env
    print(first.stdout)
    assert first.returncode == 0, first.stdout + first.stderr
    report = orjson.loads((tmp_path / "uat.json").read_bytes())
    figures = report["figures"]
    assert report["passed"] is True and {c["name"] for c in report["checks"]} == {
        "no_server_errors", "accepted_in_silver", "faults_ended_where_expected", "gold_equals_silver",
        "critical_alerts_explained", "poison_dead_lettered"}
    assert figures["dead_letters"] == 9
    faults = figures["faults"]
    assert figures["transactions"] >= 100 and sum(figures["by_status"].values()) == figures["requests"]
    assert figures["requests"] == figures["transactions"] + faults.get("exact_resend", 0) + \
        faults.get("conflicting_duplicate", 0)
    assert figures["by_status"].get("422", 0) == faults.get("malformed_json", 0) + faults.get("missing_field", 0)
    expected_reasons = {"line_sum_mismatch": faults.get("bad_total", 0),
                        "negative_quantity": faults.get("negative_quantity", 0),
                        "negative_amount": faults.get("negative_quantity", 0),
                        "conflicting_duplicate": faults.get("conflicting_duplicate", 0),
                        "over_threshold": faults.get("over_threshold", 0)}
    assert figures["quarantined"] == {k: v for k, v in expected_reasons.items() if v}
    quarantined = sum(faults.get(k, 0) for k in ("bad_total", "negative_quantity", "conflicting_duplicate",
                                                 "over_threshold"))
    assert figures["in_silver"] == figures["accepted_events"] - quarantined
    assert figures["quality_run_after_settle"] is True
    alerts = next(c for c in report["checks"] if c["name"] == "critical_alerts_explained")
    assert alerts["checked"] >= 1  # the quarantines raised alerts, and the faults explain them

    # the same deployment, another seed; the checker believes no fault was injected
    second = _uat(env, running, tmp_path / "told.json", "--seed", "18", "--expect-faults", "")
    assert second.returncode == 1, second.stdout + second.stderr
    told = orjson.loads((tmp_path / "told.json").read_bytes())
    failed = {c["name"]: c for c in told["checks"] if not c["passed"]}
    assert "accepted_in_silver" in failed
    assert any("quarantine(" in f for f in failed["accepted_in_silver"]["failures"])
    assert all("expected in silver, found quarantine(" in f for f in failed["accepted_in_silver"]["failures"])
    assert failed["critical_alerts_explained"]["failures"]
    assert "UAT failed" in second.stdout


def _simulated(dsn: str) -> tuple[int, int, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM bronze.transactions WHERE source = 'simulator'),"
            " (SELECT count(*) FROM silver.transactions WHERE source = 'simulator'),"
            " (SELECT count(*) FROM silver.quarantine q JOIN bronze.transactions b ON b.id = q.bronze_id"
            "  WHERE b.source = 'simulator' AND 'line_sum_mismatch' = ANY(q.reasons))").fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def test_feed_started_over_the_api_lands_in_silver(pipeline: Pipeline) -> None:
    running, env = pipeline, pipeline.env
    _, secret = cli_token(env, "--name", "uat admin", "--scope", "admin", "--all-stores")
    admin = {"Authorization": f"Bearer {secret}"}
    started = httpx.post(f"{running.url}/v1/simulator/start", headers=admin, timeout=10,
                         json={"rate": 40, "seed": 5, "faults": "bad_total=0.1,missing_field=0.1", "duration_s": 4})
    assert started.status_code == 202, started.text
    status = eventually(lambda: httpx.get(f"{running.url}/v1/simulator/status", headers=admin, timeout=5).json(),
                        until=lambda s: not s["running"], timeout=30, what="the feed to finish")
    assert status["errors"] == 0 and status["rejected"] > 0 and status["published"] > 50
    bronze, silver, quarantined = eventually(
        lambda: _simulated(env["SCOUT_DATABASE_URL"]), until=lambda r: r[1] + r[2] >= status["published"],
        timeout=60, what="the simulated events in silver or quarantine")
    assert bronze == status["published"] == silver + quarantined and quarantined > 0
