"""Every Prometheus metric Scout exports, named in one place (prefix ``scout_``).

Processes import the metric they update; each process serves its own registry on ``/metrics``, except
the API under several uvicorn workers, which aggregates every worker's values through prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, see ``observability/multiprocess.py``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# End-to-end: received by the API -> written to silver (seconds to, during a backlog, many minutes).
PIPELINE_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)

INGEST_REQUESTS = Counter(
    "scout_ingest_requests_total", "Ingest API transactions by outcome", ["endpoint", "outcome"]
)
INGEST_LATENCY = Histogram(
    "scout_ingest_request_seconds", "Ingest API request latency", ["endpoint"], buckets=LATENCY_BUCKETS
)
PRODUCE_LATENCY = Histogram(
    "scout_produce_seconds", "Time from send to Kafka acknowledgement", buckets=LATENCY_BUCKETS
)
INGEST_REJECTIONS = Counter(
    "scout_ingest_rejections_total", "Transactions the ingest API refused, by reason", ["endpoint", "reason"]
)
AUTH_FAILURES = Counter("scout_auth_failures_total", "Refused authentications, by reason", ["reason"])
HTTP_REQUESTS = Counter(
    "scout_http_requests_total", "API requests by route template, method and status", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "scout_http_request_seconds", "API request latency by route template", ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "scout_http_requests_in_flight", "API requests being served", multiprocess_mode="livesum"
)
TOKEN_LISTENER_UP = Gauge(
    "scout_token_listener_up", "API processes listening for token changes (their token cache is in use)",
    multiprocess_mode="livesum",
)

STAGE_ROWS = Counter("scout_stage_rows_total", "Rows handled by a stage, by outcome", ["stage", "outcome"])
STAGE_BATCH_SIZE = Histogram("scout_stage_batch_size", "Batch sizes per stage", ["stage"], buckets=BATCH_BUCKETS)
STAGE_BATCH_SECONDS = Histogram(
    "scout_stage_batch_seconds", "Batch durations per stage", ["stage"], buckets=LATENCY_BUCKETS
)
STAGE_RETRIES = Counter("scout_stage_retries_total", "Transient failures retried, per stage", ["stage"])
CONSUMER_STALLS = Counter(
    "scout_consumer_stalls_total",
    "Bronze partitions found not moving: stalled (records waiting and the landed offset unchanged for "
    "SCOUT_CONSUMER_STALL_TIMEOUT_S), expired (records deleted by retention before they landed)", ["step"],
)
BRONZE_STALLED = Gauge(
    "scout_bronze_stalled_partitions",
    "Partitions held by this worker with records waiting whose landed offset has not moved for "
    "SCOUT_CONSUMER_STALL_TIMEOUT_S", multiprocess_mode="livesum",
)
BRONZE_FENCED = Counter(
    "scout_bronze_fenced_batches_total",
    "Bronze batches rolled back because another worker had claimed one of their partitions (a newer epoch)",
)
DEAD_LETTERS = Counter(
    "scout_dead_letters_total", "Messages routed to the dead letters, by reason code (ops.dead_letters has the detail)",
    ["reason"],
)
QUARANTINED = Counter(
    "scout_quarantined_total",
    "Transactions quarantined, by reason (a transaction breaking two rules counts under both)", ["reason"],
)
CONSUMER_LAG = Gauge(
    "scout_consumer_lag_messages",
    "Messages on a partition held by this worker not yet landed in PostgreSQL (broker end offset - landed offset)",
    ["topic", "partition"],
)
LANDED_OFFSET = Gauge(
    "scout_bronze_landed_offset", "Next offset to land on a partition held by this worker (ops.stream_offsets)",
    ["topic", "partition"],
)
PARTITION_HIGHWATER = Gauge(
    "scout_partition_highwater_offset", "High-water mark of an assigned partition", ["topic", "partition"]
)
BRONZE_TO_SILVER = Histogram(
    "scout_bronze_to_silver_seconds",
    "Time from the API receiving a transaction to its row in silver (silver processed_at - received_at)",
    buckets=PIPELINE_BUCKETS,
)
LINKED_LINES = Counter(
    "scout_link_lines_total",
    "Line items written to silver by how they were linked to a product (sku, name, fuzzy, unlinked)", ["method"],
)

GOLD_REFRESH_SECONDS = Histogram(
    "scout_gold_refresh_seconds", "Gold view refresh duration", ["view"], buckets=LATENCY_BUCKETS
)
GOLD_REFRESHES = Counter("scout_gold_refreshes_total", "Gold refresh attempts by status", ["view", "status"])
JOB_RUNS = Counter("scout_job_runs_total", "Scheduled job runs by status", ["job", "status"])
GOLD_VIEW_ROWS = Gauge("scout_gold_view_rows", "Rows in a gold view after its last refresh", ["view"])
GOLD_LAST_REFRESH = Gauge(
    "scout_gold_last_refresh_timestamp_seconds",
    "Last time the view was known current: refreshed, or skipped because silver had not moved",
    ["view"],
)

QUALITY_WARNINGS = Counter(
    "scout_quality_warnings_total", "Transactions that broke a warning rule and landed in silver", ["rule"]
)
QUALITY_CHECKS = Counter("scout_quality_checks_total", "Quality checks run, by suite and outcome", ["suite", "outcome"])
QUALITY_RUN_SECONDS = Histogram(
    "scout_quality_run_seconds", "Duration of a quality suite run", ["suite"], buckets=(*LATENCY_BUCKETS, 30, 60)
)
ALERTS_ACTIVE = Gauge("scout_alerts_active", "Open quality alerts (ops.alerts), by rule and severity",
                      ["rule", "severity"])
ALERT_WEBHOOK = Counter("scout_alert_webhook_deliveries_total", "Alert webhook POSTs by outcome", ["outcome"])

UPLOAD_ROWS = Counter(
    "scout_upload_rows_total", "CSV upload rows by outcome (accepted, duplicate, rejected)", ["outcome"]
)
UPLOADS = Counter("scout_uploads_total", "Upload jobs finished, by final state", ["state"])
UPLOADS_ACTIVE = Gauge("scout_uploads_active", "Upload jobs running", multiprocess_mode="livesum")


def observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """``count`` observations of one ``amount`` (the acks of a record batch): the samples ``count`` calls of
    ``observe`` leave, written twice instead of twice per observation. In multiprocess mode every write takes a
    lock and stores into the mmapped file (2-8 µs per observation measured under load), which per message was a
    fifth of the batch endpoint's CPU. prometheus_client has no weighted observe, so this adds to the histogram's
    own sum and bucket values as ``Histogram.observe`` does (tests/unit/test_observe_many.py compares the two)."""
    if count <= 0:
        return
    if count == 1:
        histogram.observe(amount)
        return
    histogram._raise_if_not_observable()  # a histogram with labels must be given its child, as with observe
    histogram._sum.inc(amount * count)
    for i, bound in enumerate(histogram._upper_bounds):
        if amount <= bound:
            histogram._buckets[i].inc(count)
            break
