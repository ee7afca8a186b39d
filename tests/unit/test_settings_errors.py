"""Settings validation and SCOUT_ environment, the transient/terminal classifier and backoff."""

from __future__ import annotations

import itertools
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors as pg_errors
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app
from scout.errors import (
    PublishUnavailable,
    TerminalError,
    TransientError,
    backoff_delays,
    classify,
)
from scout.settings import Settings, SettingsError, load_settings


@pytest.mark.parametrize("bootstrap", ["nohost", "a:b", ":9092", "host:", "", " , ", "ok:9092,bad"])
def test_bad_kafka_bootstrap_rejected(bootstrap: str) -> None:
    with pytest.raises(ValidationError, match="kafka_bootstrap"):
        Settings(kafka_bootstrap=bootstrap)


def test_bootstrap_list_is_normalised() -> None:
    settings = Settings(kafka_bootstrap=" k1:9092, k2:19092 ,")
    assert settings.kafka_bootstrap == "k1:9092,k2:19092"
    assert settings.bootstrap_servers == ["k1:9092", "k2:19092"]


def test_topic_and_dead_letter_topic_must_differ() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        Settings(topic="same", dead_letter_topic="same")


def test_min_insync_replicas_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"SCOUT_TOPIC_MIN_INSYNC_REPLICAS \(3\) must be at most"):
        Settings(topic_replication_factor=2, topic_min_insync_replicas=3)


def test_replication_is_capped_by_the_brokers_there_are() -> None:
    from scout.kafka import plan_replication

    one, two, three = (plan_replication(Settings(), n) for n in (1, 2, 3))
    assert (one.factor, one.min_insync) == (1, 1) and "1 broker(s), fewer than" in one.note
    assert (two.factor, two.min_insync) == (2, 2)
    assert (three.factor, three.min_insync) == (3, 2) and three.note == "3 copies per partition, acks=all waits for 2"
    five = plan_replication(Settings(topic_replication_factor=5, topic_min_insync_replicas=3), 7)
    assert (five.factor, five.min_insync) == (5, 3)


def test_reads_scout_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOUT_KAFKA_BOOTSTRAP", "broker:29092")
    monkeypatch.setenv("SCOUT_TOPIC", "t1")
    monkeypatch.setenv("SCOUT_API_PORT", "8123")
    monkeypatch.setenv("SCOUT_DATABASE_URL", "postgresql://u@h:5432/d")
    monkeypatch.setenv("TOPIC", "ignored-without-prefix")
    settings = Settings()
    assert settings.bootstrap_servers == ["broker:29092"]
    assert settings.topic == "t1"
    assert settings.api_port == 8123
    assert settings.database_dsn() == "postgresql://u@h:5432/d"
    assert "u@h" not in repr(settings)


def test_environment_value_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOUT_KAFKA_BOOTSTRAP", "nohost")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SCOUT_BRONZE_RETENTION_DAYS", "0"), ("SCOUT_QUERY_MAX_ROWS", "0"), ("SCOUT_QUERY_MAX_ROWS", "1000000"),
     ("SCOUT_QUERY_TIMEOUT_MS", "10"), ("SCOUT_JOB_RETRY_DELAY_S", "0"), ("SCOUT_RETENTION_BATCH_SIZE", "0"),
     ("SCOUT_OPS_LOG_RETENTION_DAYS", "0")],
)
def test_job_and_query_settings_refuse_bad_values(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("SCOUT_").lower()):
        Settings()


def test_job_and_query_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOUT_BRONZE_RETENTION_DAYS", "7")
    monkeypatch.setenv("SCOUT_QUERY_MAX_ROWS", "50")
    settings = Settings()
    assert (settings.bronze_retention_days, settings.query_max_rows, settings.query_timeout_ms) == (7, 50, 5000)


def test_money_thresholds_and_tolerances_are_decimals(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.max_transaction_amount, defaults.line_sum_tolerance) == (Decimal("10000"), Decimal("0.01"))
    monkeypatch.setenv("SCOUT_MAX_TRANSACTION_AMOUNT", "2500.50")
    monkeypatch.setenv("SCOUT_LINE_SUM_TOLERANCE", "0.1")
    monkeypatch.setenv("SCOUT_LINK_COVERAGE_MIN", "0.9")
    settings = load_settings()
    for value in (settings.max_transaction_amount, settings.line_sum_tolerance, settings.link_coverage_min,
                  settings.fuzzy_link_share_max):
        assert type(value) is Decimal
    assert (settings.max_transaction_amount, settings.line_sum_tolerance) == (Decimal("2500.50"), Decimal("0.1"))


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SCOUT_MAX_TRANSACTION_AMOUNT", "abc", "a valid decimal"),
        ("SCOUT_MAX_TRANSACTION_AMOUNT", "NaN", "a finite number"),
        ("SCOUT_MAX_TRANSACTION_AMOUNT", "Infinity", "a finite number"),
        ("SCOUT_MAX_TRANSACTION_AMOUNT", "-1", "greater than 0"),
        ("SCOUT_MAX_TRANSACTION_AMOUNT", "0", "greater than 0"),
        ("SCOUT_MAX_TRANSACTION_AMOUNT", "10.005", "no more than 2 decimal places"),
        ("SCOUT_MAX_TRANSACTION_AMOUNT", "1e10", "less than or equal to 9999999999.99"),
        ("SCOUT_LINE_SUM_TOLERANCE", "-0.01", "greater than or equal to 0"),
        ("SCOUT_LINE_SUM_TOLERANCE", "1.5", "less than or equal to 1"),
        ("SCOUT_LINE_SUM_TOLERANCE", "1%", "a valid decimal"),
        ("SCOUT_LINK_COVERAGE_MIN", "95", "less than or equal to 1"),
        ("SCOUT_FUZZY_LINK_SHARE_MAX", "-0.2", "greater than or equal to 0"),
    ],
)
def test_a_bad_threshold_is_refused_at_load_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value).startswith(f"{variable}: ")
    assert reason in str(refused.value) and repr(value) in str(refused.value)


def test_every_refused_variable_is_listed_and_a_secret_is_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOUT_ALERT_WEBHOOK_URL", "ftp://alerts:hunter2@hooks.example.com")
    monkeypatch.setenv("SCOUT_API_PORT", "0")
    monkeypatch.setenv("SCOUT_QUALITY_SEVERITIES", '{"over_threshold": "loud"}')
    with pytest.raises(SettingsError) as refused:
        load_settings()
    lines = str(refused.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "SCOUT_API_PORT", "SCOUT_QUALITY_SEVERITIES[over_threshold]", "SCOUT_ALERT_WEBHOOK_URL"]
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("command", [["migrate"], ["verify"], ["jobs", "list"], ["quality", "rules"],
                                     ["quality", "run"], ["quality", "alerts"]])
def test_every_cli_command_refuses_a_bad_variable_with_its_name(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("SCOUT_DATABASE_URL", "postgresql://scout@127.0.0.1:1/scout")
    monkeypatch.setenv("SCOUT_LINE_SUM_TOLERANCE", "5")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    output = " ".join(result.output.split())
    assert "SCOUT_LINE_SUM_TOLERANCE: Input should be less than or equal to 1 (got '5')" in output
    assert "Fix the SCOUT_* environment variables" in output


@pytest.mark.parametrize("command", [["migrate"], ["quality", "run"], ["quality", "alerts"]])
def test_cli_without_a_database_url_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.delenv("SCOUT_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "SCOUT_DATABASE_URL is not set" in " ".join(result.output.split())


def test_explicit_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOUT_TOPIC", "from-env")
    assert Settings(topic="explicit").topic == "explicit"


def test_database_dsn_without_url_explains() -> None:
    with pytest.raises(RuntimeError, match="SCOUT_DATABASE_URL"):
        Settings().database_dsn()


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (psycopg.OperationalError("connection refused"), "transient"),
        (pg_errors.DeadlockDetected("deadlock"), "transient"),
        (pg_errors.SerializationFailure("retry"), "transient"),
        (pg_errors.UniqueViolation("duplicate key"), "terminal"),
        (pg_errors.InvalidTextRepresentation("bad input"), "terminal"),
        (psycopg.ProgrammingError("syntax"), "terminal"),
        (ConnectionError("reset"), "transient"),
        (ConnectionRefusedError("refused"), "transient"),
        (TimeoutError(), "transient"),
        (ValueError("bad"), "terminal"),
        (KeyError("x"), "terminal"),
        (PublishUnavailable("no ack"), "transient"),
        (TransientError("later"), "transient"),
        (TerminalError("never"), "terminal"),
    ],
)
def test_classify(exc: BaseException, kind: str) -> None:
    assert classify(exc) == kind


def test_classify_kafka_errors() -> None:
    from aiokafka import errors as aiokafka_errors

    assert classify(aiokafka_errors.KafkaConnectionError("down")) == "transient"
    assert classify(aiokafka_errors.RequestTimedOutError()) == "transient"
    assert classify(aiokafka_errors.UnsupportedVersionError()) == "terminal"


def test_backoff_doubles_then_caps() -> None:
    delays = list(itertools.islice(backoff_delays(base=0.2, cap=1.0), 6))
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.0, 1.0, 1.0])
    assert list(itertools.islice(backoff_delays(), 10))[-1] == 10.0


def test_backoff_never_exceeds_cap_even_below_base() -> None:
    """retry_transient passes cap=settings.retry_max_backoff_s, which may be below the 0.2 s base."""
    delays = list(itertools.islice(backoff_delays(cap=0.1), 3))
    assert max(delays) <= 0.1
