"""Run benchmark parts, print a table and write the JSON report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cli.bench.e2e import bench_e2e
from cli.bench.env import Broker, bench_services, machine_facts
from cli.bench.gold import bench_gold
from cli.bench.ingest import bench_ingest
from cli.bench.link import bench_link
from cli.bench.quality import bench_quality
from cli.bench.retention import bench_retention
from cli.bench.status import bench_status
from cli.bench.streams import bench_bronze_and_silver
from cli.bench.upload import bench_upload

PARTS = ("ingest", "bronze", "silver", "e2e", "link", "gold", "upload", "quality", "status", "retention")
TARGETS = {"ingest_single_tx_s": 4_000, "ingest_p99_ms_at_1000": 50, "ingest_batch_tx_s": 25_000,
           "bronze_tx_s": 40_000, "silver_tx_s": 15_000, "link_names_s": 20_000, "gold_refresh_all_1m_s": 10,
           "gold_refresh_all_10m_s": 10, "gold_freshness_p95_s": 30, "gold_schedule_freshness_p95_s": 15,
           "upload_rows_s": 50_000, "e2e_tx_s": 2_000, "e2e_p99_s": 2,
           "status_p95_ms_1m": 200}


def run_bench(parts: list[str], *, count: int, broker: Broker, silver_workers: int, out_dir: Path,
              cache_dir: Path, console: Console, upload_lines: int = 1_000_000, duration: float = 180,
              rate: float = 2_000, repeats: int = 1,
              gold_scales: tuple[int, ...] = (100_000, 1_000_000)) -> dict[str, Any]:
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    report: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(), "machine": machine_facts(broker),
                              "settings": {"count": count, "broker": broker, "silver_workers": silver_workers,
                                           "e2e": {"duration_s": duration, "rate": rate, "repeats": repeats},
                                           "gold_scales": list(gold_scales)},
                              "targets": TARGETS, "results": {}}
    if "ingest" in parts:
        with bench_services(broker, cache_dir) as services:
            report["results"]["ingest"] = bench_ingest(
                services.bootstrap, services.fresh_database("bench_ingest"), services.work_dir, count=count // 10,
                api_workers=2, say=lambda text: console.print(f"  {text}"))
    if "bronze" in parts or "silver" in parts:
        with bench_services(broker, cache_dir) as services:
            dsn = services.fresh_database("bench")
            report["results"]["streams"] = bench_bronze_and_silver(
                services.bootstrap, dsn, services.fresh_database("bench_reference"), services.work_dir,
                count=count, silver_workers=silver_workers, bronze="bronze" in parts, silver="silver" in parts,
                say=lambda text: console.print(f"  {text}"))
    if "e2e" in parts:
        report["results"]["e2e"] = bench_e2e(broker, cache_dir, duration=duration, rate=rate,
                                             silver_workers=silver_workers, repeats=repeats,
                                             say=lambda text: console.print(f"  {text}"))
    if "gold" in parts:
        with bench_services(broker, cache_dir, kafka=False) as services:
            report["results"]["gold"] = bench_gold(
                services.fresh_database("bench_gold"), scales=gold_scales,
                plot=out_dir / f"bench-gold-scaling-{stamp}.png" if len(gold_scales) > 1 else None,
                say=lambda text: console.print(f"  {text}"))
    if "quality" in parts:
        with bench_services(broker, cache_dir, kafka=False) as services:
            report["results"]["quality"] = bench_quality(services.fresh_database("bench_quality"),
                                                         say=lambda text: console.print(f"  {text}"))
    if "upload" in parts:
        with bench_services(broker, cache_dir) as services:
            report["results"]["upload"] = bench_upload(
                services.bootstrap, services.fresh_database("bench_upload"), services.work_dir,
                lines=upload_lines, say=lambda text: console.print(f"  {text}"))
    if "status" in parts:
        with bench_services(broker, cache_dir) as services:
            report["results"]["status"] = bench_status(
                services.bootstrap, services.fresh_database("bench_status"), services.work_dir,
                say=lambda text: console.print(f"  {text}"))
    if "retention" in parts:
        with bench_services(broker, cache_dir, kafka=False) as services:
            report["results"]["retention"] = bench_retention(services.admin_dsn, services.fresh_database,
                                                             say=lambda text: console.print(f"  {text}"))
    if "link" in parts:
        console.print("  fuzzy linking against 10,000 products ...")
        report["results"]["link"] = bench_link()
    report["finished_at"] = datetime.now(UTC).isoformat()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"bench-{'-'.join(parts)}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    _print(report, console)
    console.print(f"report written to {path}")
    return report


def _print(report: dict[str, Any], console: Console) -> None:
    table = Table("figure", "scout", "raw limit (same run)", "ratio", "target", title="scout bench")
    ingest = report["results"].get("ingest")
    if ingest:
        single, fixed, batch, raw = ingest["single"], ingest["fixed_rate_1000"], ingest["batch"], ingest["raw"]
        produce = f"Kafka produce, the API's producer and batching {raw['kafka_produce_msg_s']:,.0f}"
        awaited, noop = raw["kafka_produce_awaited_64"], raw["http_noop_64"]
        table.add_row(f"ingest single POST ({ingest['api_workers']} API workers, 64 in flight), tx/s",
                      f"{single['tx_s']:,.0f}", f"awaited produce {awaited['msg_s']:,.0f}; GET /healthz "
                      f"{noop['req_s']:,.0f}",
                      f"{single.get('ratio_to_noop', single['ratio_to_ceiling']):.2f} of no-op",
                      f"{TARGETS['ingest_single_tx_s']:,}")
        table.add_row("  latency p50 / p99 at 64 in flight, ms", f"{single['p50_ms']:.0f} / {single['p99_ms']:.0f}",
                      f"awaited produce {awaited['p50_ms']:.0f} / {awaited['p99_ms']:.0f}", "", "")
        if "api_cpu_us_per_request" in single:
            table.add_row("  API CPU per request, µs", f"{single['api_cpu_us_per_request']:,.0f}",
                          f"GET /healthz {noop['api_cpu_us_per_request']:,.0f}",
                          f"{single['api_cpu_ratio_to_noop']:.2f}", "")
        if "cpu_us" in single:
            post, idle = single["cpu_us"], noop["cpu_us"]
            table.add_row("  CPU per request: client + API + broker, µs",
                          f"{post['client']:,.0f} + {post['api']:,.0f} + {post['broker']:,.0f}",
                          f"GET /healthz {idle['client']:,.0f} + {idle['api']:,.0f} + {idle['broker']:,.0f}",
                          f"{single['cpu_ratio_to_noop']:.2f}; {single['cpu_ratio_if_scout_work_were_free']:.2f} "
                          "if Scout's work were free", "")
        table.add_row(f"  p99 at a fixed 1,000 tx/s (achieved {fixed['achieved_tx_s']:,.0f}), ms",
                      f"{fixed['p99_ms']:.0f}", "", "", f"{TARGETS['ingest_p99_ms_at_1000']}")
        table.add_row(f"ingest batch (500 per request, {ingest.get('batches_in_flight', 4)} in flight), tx/s",
                      f"{batch['tx_s']:,.0f}", produce,
                      f"{batch['ratio_to_produce']:.2f}", f"{TARGETS['ingest_batch_tx_s']:,}")
        if "api_cpu_us_per_tx" in batch:
            table.add_row("  API CPU per transaction in batches, µs", f"{batch['api_cpu_us_per_tx']:,.1f}", "", "", "")
        if "cpu_us" in batch and "cpu_us" in raw["kafka_produce_batched"]:
            used, limit = batch["cpu_us"], raw["kafka_produce_batched"]["cpu_us"]
            table.add_row("  CPU per transaction: client + API + broker, µs",
                          f"{used['client']:,.1f} + {used['api']:,.1f} + {used['broker']:,.1f}",
                          f"produce {limit['client']:,.1f} + {limit['broker']:,.1f}",
                          f"{batch['cpu_ratio_to_produce']:.2f}", "")
    streams = report["results"].get("streams")
    if streams:
        _print_streams(streams, table)
    e2e = report["results"].get("e2e")
    if e2e:
        _e2e_rows(table, e2e["summary"], len(e2e["runs"]))
    link = report["results"].get("link")
    if link:
        table.add_row("fuzzy linking, names/s (10k products)", f"{link['names_s']['median']:,.0f}", "", "",
                      f"{TARGETS['link_names_s']:,}")
    gold = report["results"].get("gold")
    if gold:
        _print_gold(table, gold)
    upload = report["results"].get("upload")
    if upload:
        table.add_row(f"bulk upload of {upload['lines']:,} lines, rows/s", f"{upload['upload_rows_s']:,.0f}",
                      f"produce {upload['raw_kafka_produce_msg_s']:,.0f} msg/s", "", f"{TARGETS['upload_rows_s']:,}")
        table.add_row("  transactions published/s (one per invoice)", f"{upload['upload_tx_s']:,.0f}",
                      f"produce {upload['raw_kafka_produce_msg_s']:,.0f} msg/s", f"{upload['ratio_tx_to_produce']:.2f}",
                      "")
        table.add_row("  parse + validate only, rows/s", f"{upload['parse_rows_s']:,.0f}", "",
                      f"{upload['ratio_to_parse_only']:.2f}", "")
        table.add_row("  peak RSS / growth during the job, MiB",
                      f"{upload['peak_rss_mib']:,.0f} / {upload['rss_growth_during_job_mib']:,.0f}", "", "", "")
    quality = report["results"].get("quality")
    if quality:
        for suite, figures in quality["suites"].items():
            table.add_row(f"quality suite {suite} at {quality['line_items']:,} line items, s (first / warm)",
                          f"{figures['first_s']:.1f} / {figures['warm_median_s']:.1f}", "", "",
                          f"< {quality['interval_s']:g} (schedule)")
    status = report["results"].get("status")
    if status:
        table.add_row(f"GET /v1/status at {status['silver_line_items']:,} line items, ms (p50 / p95 / max)",
                      f"{status['p50_ms']:.1f} / {status['p95_ms']:.1f} / {status['max_ms']:.1f}",
                      f"statement alone p50 {status['sql_alone_p50_ms']:.1f}",
                      f"{status['p50_ms'] / status['sql_alone_p50_ms']:.1f}",
                      f"p95 <= {TARGETS['status_p95_ms_1m']}")
    retention = report["results"].get("retention")
    if retention:
        table.add_row(f"bronze retention of one {retention['rows']:,}-row day, s: drop partition (row by row)",
                      f"{retention['drop_partition_s']:.2f} ({retention['row_by_row_s']:.1f})", "",
                      f"{retention['speedup']:.0f}x", "")
        table.add_row("  of which forgetting the day's event hashes (timed alone), s",
                      f"{retention['forget_hashes_alone_s']:.2f}", "", "", "")
        table.add_row("  migration 0027 converting that bronze, s", f"{retention['migration_0027_s']:.1f}", "", "", "")
    console.print(table)


def _e2e_rows(table: Table, s: dict[str, Any], repeats: int) -> None:
    """One run's figures, or the median (min-max) of each over repeats."""

    def v(figure: Any, fmt: str = ",.0f", scale: float = 1.0) -> str:
        if isinstance(figure, dict):
            if figure["min"] == figure["max"]:
                return format(figure["median"] * scale, fmt)
            return (f"{format(figure['median'] * scale, fmt)} ({format(figure['min'] * scale, fmt)}"
                    f"-{format(figure['max'] * scale, fmt)})")
        return "n/a" if figure is None else format(figure * scale, fmt)

    raw, lat, fresh = s["raw"], s["silver"]["post_to_silver_s"], s["gold_freshness"]
    label = f"e2e, {v(s['silver_workers'], 'g')} stream worker(s), {v(s['duration_s'], 'g')} s"
    label += f", {repeats} runs" if repeats > 1 else ""
    table.add_row(f"{label}: offered / accepted tx/s", f"{v(s['offered_tx_s'])} / {v(s['accepted_tx_s'])}",
                  f"Kafka produce {v(raw['kafka_produce_msg_s'])}", v(s["ratios"]["accepted_to_kafka_produce"], ".3f"),
                  f"{TARGETS['e2e_tx_s']:,}")
    table.add_row("  into silver, tx/s (missing / errors)",
                  f"{v(s['silver']['tx_s'])} ({v(s['silver']['missing'])} / {v(s['errors'])})",
                  f"COPY {v(raw['copy_silver_tx_with_lines_s'])}", v(s["ratios"]["silver_to_copy"], ".3f"), "")
    table.add_row("  POST -> silver commit p50 / p95 / p99, s",
                  f"{v(lat['p50'], '.2f')} / {v(lat['p95'], '.2f')} / {v(lat['p99'], '.2f')}", "", "",
                  f"p99 {TARGETS['e2e_p99_s']}")
    table.add_row("  gold freshness p95, s (first view / all views)",
                  f"{v(fresh['first_view']['p95_s'], '.1f')} / {v(fresh['all_views']['p95_s'], '.1f')}", "", "",
                  f"{TARGETS['gold_freshness_p95_s']}")
    table.add_row("  CPU cores used during the load", ", ".join(
        f"{name} {v(cores, '.2f')}" for name, cores in s["cpu_cores_during_load"].items()), "", "", "")
    table.add_row("  scheduler job runs (succeeded / failed)", ", ".join(
        f"{job} {v(by.get('succeeded', 0))} / {v(by.get('failed', 0))}" for job, by in s["job_runs"].items()),
        "", "", "")
    for name, rss in s["rss"].items():
        verdict = {True: ", flat", False: ", growing"}.get(rss["flat"], "")
        if rss["flat"] is False and rss.get("second_half_flat"):
            verdict += f"; second half {v(rss['second_half_slope_mib_per_min'], '+.1f')}, flat"
        table.add_row(f"  RSS {name} start / end / peak, MiB (slope MiB/min)",
                      f"{v(rss['start_mib'])} / {v(rss['end_mib'])} / {v(rss['peak_mib'])} "
                      f"({v(rss['slope_mib_per_min'], '+.1f')}{verdict})", "", "", "flat")


def _print_gold(table: Table, gold: dict[str, Any]) -> None:
    for size, f in gold["scales"].items():
        raw = f["raw_pass_s"]["median"]
        target = {"1000000": f"{TARGETS['gold_refresh_all_1m_s']}",
                  "10000000": f"{TARGETS['gold_refresh_all_10m_s']}"}.get(size, "")
        table.add_row(f"gold at {int(size):,} line items: refresh of all views after "
                      f"{gold['batch_transactions']:,} new transactions, s", f"{f['cycle_all_s']['median']:.2f}",
                      f"one join pass over silver {raw:.2f} s", f"{f['cycle_all_s']['median'] / raw:.1f}", target)
        table.add_row("  core views (every run) / analytical views (own job), s",
                      f"{f['cycle_core_s']['median']:.2f} / {f['cycle_analytical_s']['median']:.2f}", "",
                      f"{f['cycle_core_s']['median'] / raw:.1f} / {f['cycle_analytical_s']['median'] / raw:.1f}", "")
        table.add_row("  rebuild of all views from silver, s", f"{f['rebuild_all_s']['median']:.2f}", "",
                      f"{f['rebuild_all_s']['median'] / raw:.1f}", "")
    fresh = gold["freshness"]
    table.add_row(f"gold freshness p50 / p95 (every {fresh['interval_s']:g} s), s",
                  f"{fresh['p50_s']:.1f} / {fresh['p95_s']:.1f}", "", "",
                  f"p95 {TARGETS['gold_schedule_freshness_p95_s']}")


def _print_streams(streams: dict[str, Any], table: Table) -> None:
    raw = streams["raw"]
    b, s = streams.get("bronze"), streams.get("silver")
    if b:
        table.add_row("bronze landing, tx/s", f"{b['tx_s']:,.0f}", f"COPY {raw['copy_bronze_rows_s']:,.0f}",
                      f"{b['ratio_to_copy']:.2f}", f"{TARGETS['bronze_tx_s']:,}")
        table.add_row("  same code in a plain aiokafka loop, tx/s", f"{b['reference_aiokafka_loop_tx_s']:,.0f}", "",
                      f"{b['ratio_to_reference']:.2f}", "")
        table.add_row("  Kafka consume / produce, msg/s", "", f"{raw['kafka_consume_msg_s']:,.0f} / "
                      f"{raw['kafka_produce_msg_s']:,.0f}", f"{b['ratio_to_consume']:.2f}", "")
        table.add_row("  bronze worker RSS start / peak / end, MiB", _rss(b["rss"]), "", "", "flat")
        table.add_row("  CPU per row, worker + PostgreSQL, µs", _cpu(b["cpu"]), f"COPY {_cpu(raw['copy_bronze_cpu'])}",
                      f"{b['cpu']['total_us_per_row'] / raw['copy_bronze_cpu']['total_us_per_row']:.1f}x", "")
    if s:
        table.add_row(f"silver drain ({s['workers']} worker), tx/s", f"{s['tx_s']:,.0f}",
                      f"COPY {raw['copy_silver_tx_with_lines_s']:,.0f}", f"{s['ratio_to_copy']:.2f}",
                      f"{TARGETS['silver_tx_s']:,}")
        table.add_row("  silver line items/s", f"{s['line_items_s']:,.0f}", f"COPY {raw['copy_line_items_s']:,.0f}",
                      "", "")
        table.add_row("  silver worker RSS start / peak / end, MiB", _rss(s["rss"]), "", "", "flat")
        copy_cpu = raw["copy_silver_tx_with_lines_cpu"]
        table.add_row("  CPU per transaction, worker + PostgreSQL, µs", _cpu(s["cpu"]), f"COPY {_cpu(copy_cpu)}",
                      f"{s['cpu']['total_us_per_row'] / copy_cpu['total_us_per_row']:.1f}x", "")


def _rss(rss: dict[str, float]) -> str:
    return f"{rss['start_mib']:,.0f} / {rss['peak_mib']:,.0f} / {rss['end_mib']:,.0f}"


def _cpu(cpu: dict[str, float]) -> str:
    return f"{cpu['client_us_per_row']:,.0f} + {cpu['postgres_us_per_row']:,.0f}"
