"""`scout bench retention` on a small day: the row-by-row delete of the old job and the partition drop remove the
same rows, and migration 0027 converts the old bronze, so the benchmark measures what the code does."""

from __future__ import annotations

from cli.bench.retention import bench_retention
from tests.services import Postgres


def test_the_retention_benchmark_deletes_and_drops_the_same_day(postgres: Postgres) -> None:
    result = bench_retention(postgres.admin_dsn, lambda _name: postgres.fresh_database(), rows=3_000,
                             say=lambda _: None)
    assert result["rows"] == 3_000 and result["row_by_row_batches"] == 1
    assert result["row_by_row_s"] > 0 and result["drop_partition_s"] > 0 and result["migration_0027_s"] > 0
    sizes = result["bronze_bytes"]
    assert sizes["after_drop"] < sizes["partitioned_seeded"]  # the day's storage is gone, not just its rows
    assert len(result["load_average_1_5_15"]) == 3
