"""Secrets come from settings only and never reach a log: `scout api`, `scout worker` and `scout scheduler`
run at debug level with a database password, device tokens (good and wrong ones) and an alert webhook URL
with credentials and a secret path; their whole output is searched for each secret (the webhook's own
delivery is covered in tests/unit/test_secrets_hidden.py). Every process connects as the kind of login the
compose deployment gives it (docker-compose.yml, configs.postgres-init): the API as a member of scout_ingest
and scout_reader, worker and scheduler as members of scout_pipeline, none a superuser; the pipeline still
lands silver and refreshes gold under them. The database holds token hashes, never a token."""

from __future__ import annotations

import uuid

import httpx
import psycopg
from psycopg import sql

from cli.processes import Children, child_env
from cli.services import free_port
from scout.kafka import ensure_topics
from scout.settings import Settings
from tests.conftest import eventually
from tests.e2e.workers import stop_and_show_logs, wait_api_ready
from tests.factories import cli_token, tx_dict
from tests.receiver import Receiver
from tests.services import Postgres

DB_PASSWORD = "db-pw-" + uuid.uuid4().hex
HOOK_PASSWORD = "hook-pw-" + uuid.uuid4().hex
HOOK_PATH = "T0/B0/" + uuid.uuid4().hex  # chat webhooks carry their secret in the path


def _with_password(dsn: str, user: str) -> str:
    return dsn.replace("postgres@", f"{user}:{DB_PASSWORD}@", 1)


def _silver_and_quarantine(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT (SELECT count(*) FROM silver.transactions) + "
                           "(SELECT count(*) FROM silver.quarantine)").fetchone()
    return int(row[0]) if row else 0


def _gold_refreshed(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM ops.gold_refresh_log WHERE status = 'refreshed'").fetchone()
    return bool(row and row[0])


def test_no_secret_in_any_output(settings: Settings, postgres: Postgres) -> None:
    dsn = settings.database_dsn()
    api_login, pipeline_login = f"api_{uuid.uuid4().hex[:8]}", f"worker_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
        for login, roles in ((api_login, "scout_ingest, scout_reader"), (pipeline_login, "scout_pipeline")):
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE " + roles).format(
                sql.Identifier(login), sql.Literal(DB_PASSWORD)))
    ensure_topics(settings)
    port = free_port()
    with Receiver().running() as hook:
        hook_url = hook.url.replace("http://", f"http://alerts:{HOOK_PASSWORD}@").replace("/hook", f"/{HOOK_PATH}")
        env = child_env(
            database_url=_with_password(dsn, "postgres"), kafka_bootstrap=settings.kafka_bootstrap,
            topic=settings.topic, dead_letter_topic=settings.dead_letter_topic, stream_app_id=settings.stream_app_id,
            api_port=str(port), data_dir=str(settings.data_dir), worker_metrics_port="0", scheduler_metrics_port="0",
            log_level="debug", alert_webhook_url=hook_url, quality_interval_s="1", max_transaction_amount="100",
            gold_refresh_interval_s="1", silver_idle_interval_s="0.1", bronze_batch_within_s="0.2",
        )
        _, token = cli_token(env, "--name", "secret test", "--all-stores")
        _, reader = cli_token(env, "--name", "secret reader", "--scope", "read", "--all-stores")
        children = Children({**env, "SCOUT_DATABASE_URL": _with_password(dsn, api_login)},
                            settings.data_dir / "logs")
        children.start("api", "api")
        pipeline_env = {**env, "SCOUT_DATABASE_URL": _with_password(dsn, pipeline_login)}
        children.env = {**pipeline_env, "SCOUT_WORKER_WEB_PORT": str(free_port())}
        children.start("worker", "worker")
        children.env = pipeline_env
        children.start("scheduler", "scheduler")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_api_ready(url)
            with httpx.Client(base_url=url, timeout=30) as client:
                ok = client.post("/v1/transactions", json=tx_dict(1), headers={"Authorization": f"Bearer {token}"})
                over = client.post("/v1/transactions", json=tx_dict(2, price="500.00"),
                                   headers={"Authorization": f"Bearer {token}"})
                wrong = client.post("/v1/transactions", json=tx_dict(3),
                                    headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
                scope = client.post("/v1/transactions", json=tx_dict(4), headers={"Authorization": f"Bearer {reader}"})
                query = client.post("/v1/query", json={"sql": "SELECT 1 FROM nowhere"},
                                    headers={"Authorization": f"Bearer {reader}"})
            assert (ok.status_code, over.status_code, wrong.status_code, scope.status_code) == (202, 202, 401, 403)
            assert query.status_code == 400, query.text
            eventually(lambda: _silver_and_quarantine(dsn), until=lambda n: n == 2, timeout=120,
                       what="both transactions through silver")
            eventually(lambda: _gold_refreshed(dsn), until=bool, timeout=120,
                       what="a gold refresh by the scheduler's pipeline login")
            with psycopg.connect(dsn) as conn:
                users = conn.execute(
                    "SELECT DISTINCT a.application_name, a.usename, r.rolsuper FROM pg_stat_activity a "
                    "JOIN pg_roles r ON r.rolname = a.usename WHERE a.application_name LIKE 'scout-%' "
                    "ORDER BY 1").fetchall()
                failed = conn.execute("SELECT job_name, error FROM ops.job_runs WHERE status = 'failed'").fetchall()
                stored = [str(row[0]) for row in conn.execute("SELECT t::text FROM ops.device_tokens t")]
        finally:
            stop_and_show_logs(children)
    assert {(app, user, sup) for app, user, sup in users if app == "scout-api"} == {("scout-api", api_login, False)}
    assert {user for _, user, _ in users} == {api_login, pipeline_login}, users  # no process as the owner
    assert failed == [], f"jobs failed under the pipeline login: {failed}"
    assert len(stored) == 2 and not any(token in row or reader in row for row in stored)
    assert not any(token[12:] in row for row in stored)  # not even the secret part after the shown prefix
    output = "\n".join(c.log.read_text(errors="replace") for c in children.running)
    for name, secret in {"database password": DB_PASSWORD, "device token": token, "reader token": reader,
                         "wrong token": token[:-4] + "AAAA", "token secret part": token[12:],
                         "webhook password": HOOK_PASSWORD, "webhook path": HOOK_PATH}.items():
        assert secret not in output, f"the {name} appears in the processes' output"
