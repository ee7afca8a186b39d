"""`scout bench ingest` runs against a real API, broker and database: the no-op and the POSTs in alternating
passes, the CPU of each phase split between client, API and broker, the batches in passes with each API worker's
busy share, every request answered as a success."""

from __future__ import annotations

from pathlib import Path

from cli.bench.ingest import PASSES, Cpu, bench_ingest


def test_the_ingest_benchmark_measures_passes_and_splits_their_cpu(kafka_bootstrap: str, database: str,
                                                                    tmp_path: Path) -> None:
    result = bench_ingest(kafka_bootstrap, database, tmp_path, count=600, api_workers=2, say=lambda _: None,
                          min_requests=600)
    assert Cpu.of_listener(kafka_bootstrap).pid is not None  # the broker's CPU is counted, not taken as zero
    single, noop, batch = result["single"], result["raw"]["http_noop_64"], result["batch"]
    assert result["requests_per_pass"] == 600 and result["passes"] == PASSES
    assert single["statuses"] == {202: 600}
    assert len(single["runs_tx_s"]) == len(noop["runs_req_s"]) == len(single["runs_ratio_to_noop"]) == PASSES
    assert single["tx_s"] == sorted(single["runs_tx_s"])[PASSES // 2]
    assert single["ratio_to_noop"] == sorted(single["runs_ratio_to_noop"])[PASSES // 2]
    for cpu in (single["cpu_us"], noop["cpu_us"], batch["cpu_us"]):
        assert set(cpu) == {"client", "api", "broker", "total"}
        assert cpu["api"] > 0 and cpu["total"] == cpu["client"] + cpu["api"] + cpu["broker"]
    assert 0 < single["cpu_ratio_to_noop"] <= single["cpu_ratio_if_scout_work_were_free"]
    assert result["fixed_rate_1000"]["statuses"] == {202: 1000}
    assert batch["statuses"] == {"200": 3} and batch["accepted"] == 1200  # the median pass: 500 + 500 + 200
    assert len(batch["runs_tx_s"]) == PASSES
    assert [len(busy) for busy in batch["runs_api_worker_busy"]] == [2] * PASSES
    assert set(result["raw"]["kafka_produce_batched"]["cpu_us"]) == {"client", "broker", "total"}
