"""docker-compose.yml is a valid Compose file whose settings are the ones the code reads.

No Docker engine or compose CLI is needed: the file is interpolated with its defaults and validated
against the Compose Specification's JSON schema (vendored by the check-jsonschema package); every
``SCOUT_*`` variable must be a field of ``scout.settings.Settings`` and each service's environment must
load into Settings; Prometheus must scrape each Scout service on the port that service listens on.
"""

from __future__ import annotations

import copy
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from scout.settings import Settings
from tests.unit.test_deployment_files import interpolate

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
PROMETHEUS = ROOT / "observability" / "prometheus" / "prometheus.yml"
SCOUT_VARIABLE = re.compile(r"\bSCOUT_[A-Z0-9_]+\b")

# What each Scout process cannot run without in a container (None: any value).
REQUIRED: dict[str, dict[str, str | None]] = {
    "migrate": {"SCOUT_DATABASE_URL": None},
    "topics": {"SCOUT_KAFKA_BOOTSTRAP": None},
    "api": {"SCOUT_DATABASE_URL": None, "SCOUT_KAFKA_BOOTSTRAP": None, "SCOUT_API_HOST": "0.0.0.0"},
    "worker": {"SCOUT_DATABASE_URL": None, "SCOUT_KAFKA_BOOTSTRAP": None, "SCOUT_METRICS_HOST": "0.0.0.0"},
    "scheduler": {"SCOUT_DATABASE_URL": None, "SCOUT_METRICS_HOST": "0.0.0.0"},
}
# The setting holding the port each service's /metrics answers on (the API serves it on its own port).
METRICS_PORT = {"api": "api_port", "worker": "worker_metrics_port", "scheduler": "scheduler_metrics_port"}


def _interpolated(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _interpolated(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolated(v) for v in node]
    return interpolate(node) if isinstance(node, str) else node


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _interpolated(yaml.safe_load(COMPOSE_TEXT))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, doc: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def _settings_of(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as the process in this container builds them from its environment."""
    with monkeypatch.context() as env:
        for name in [n for n in os.environ if n.startswith("SCOUT_")]:
            env.delenv(name)
        for name, value in (service.get("environment") or {}).items():
            env.setenv(name, str(value))
        return Settings()


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any],
                                                        validator: jsonschema.Draft7Validator) -> None:
    assert _errors(validator, compose) == []


@pytest.mark.parametrize(("path", "value"), [
    (("services", "worker", "replica"), 2),                               # a misspelt key
    (("services", "api", "depends_on", "migrate", "condition"), "service_done"),
    (("services", "api", "ports"), "8000:8000"),                           # a list, not a string
])
def test_the_schema_check_catches_mistakes(compose: dict[str, Any], validator: jsonschema.Draft7Validator,
                                           path: tuple[str, ...], value: Any) -> None:
    broken = copy.deepcopy(compose)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert _errors(validator, broken)


def test_every_scout_variable_is_a_setting() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    used = set(SCOUT_VARIABLE.findall(COMPOSE_TEXT)) | set(SCOUT_VARIABLE.findall(dockerfile))
    known = {f"SCOUT_{name.upper()}" for name in Settings.model_fields}
    assert used, "the compose file passes no SCOUT_* setting"
    assert used - known == set(), "not settings (typo, or a setting that was renamed or removed)"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_each_scout_service_has_its_required_settings_and_they_load(
        name: str, compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    service = compose["services"][name]
    env = service.get("environment") or {}
    for variable, value in REQUIRED[name].items():
        assert env.get(variable), f"{name}: {variable} is not set"
        if value is not None:
            assert env[variable] == value, f"{name}: {variable}={env[variable]}, needs {value}"
    settings = _settings_of(service, monkeypatch)  # refuses a bad value the way the process would
    assert settings.database_url is not None or name == "topics"


def test_prometheus_scrapes_each_service_on_its_metrics_port(compose: dict[str, Any],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    scraped: dict[str, int] = {}
    for job in yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                scraped[host] = int(port)
        for dns in job.get("dns_sd_configs", []):
            scraped.update({host: int(dns["port"]) for host in dns["names"]})
    scraped.pop("localhost", None)  # Prometheus itself
    services = compose["services"]
    assert set(scraped) <= set(services), f"scrape targets that are no service: {set(scraped) - set(services)}"
    for name, setting in METRICS_PORT.items():
        port = getattr(_settings_of(services[name], monkeypatch), setting)
        assert scraped.get(name) == port, f"{name}: /metrics on {port}, Prometheus scrapes {scraped.get(name)}"


def test_workers_scale_and_prometheus_finds_every_replica(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert int(worker["deploy"]["replicas"]) >= 1
    assert not {"container_name", "hostname", "ports"} & set(worker)
    jobs = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))["scrape_configs"]
    assert any("worker" in dns["names"] for job in jobs for dns in job.get("dns_sd_configs", [])), \
        "a static worker target would see one replica only"


def test_long_running_services_have_health_checks_and_start_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if service.get("restart") != "no":
            assert "healthcheck" in service, f"{name} runs for good but has no health check"
    # Prometheus must run while what it watches is unhealthy (to alert on it): it only waits for their start.
    assert {d["condition"] for d in services["prometheus"]["depends_on"].values()} == {"service_started"}
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["postgres"]["condition"] == "service_healthy"


# The logins tests/e2e/test_secrets.py runs each process under (a member of these group roles, no superuser).
LOGIN_ROLES = {"api": {"scout_ingest", "scout_reader"}, "worker": {"scout_pipeline"},
               "scheduler": {"scout_pipeline"}}
CREATE_LOGIN = re.compile(r"CREATE ROLE \"?(\w+)\"? LOGIN PASSWORD '[^']*' IN ROLE ([\w, ]+);")


def test_processes_connect_as_least_privilege_logins_and_only_migrate_as_the_owner(
        compose: dict[str, Any]) -> None:
    owner = compose["services"]["postgres"]["environment"]["POSTGRES_USER"]
    init = compose["configs"]["postgres-init"]["content"]
    logins = {name: {r.strip() for r in roles.split(",")} for name, roles in CREATE_LOGIN.findall(init)}
    for name, roles in LOGIN_ROLES.items():
        url = compose["services"][name]["environment"]["SCOUT_DATABASE_URL"]
        user = url.split("://", 1)[1].split(":", 1)[0]
        assert user != owner, f"{name} connects as the database owner"
        assert logins.get(user) == roles, f"{name} connects as {user}, created with roles {logins.get(user)}"
    assert compose["services"]["migrate"]["environment"]["SCOUT_DATABASE_URL"].startswith(f"postgresql://{owner}:")
    assert "SUPERUSER" not in init.upper().replace("NOSUPERUSER", "")


# --- the `cluster` profile: three Kafka brokers ----------------------------------------------------

CLUSTER_ENV = ROOT / "cluster.env"
CLUSTER_NODES = ("kafka", "kafka-2", "kafka-3")


def _env_file(path: Path) -> dict[str, str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _with(values: dict[str, str], node: Any) -> Any:
    """Compose's interpolation with ``values`` set (as `--env-file cluster.env` does), defaults otherwise."""
    if isinstance(node, dict):
        return {k: _with(values, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_with(values, v) for v in node]
    if not isinstance(node, str):
        return node
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}",
                  lambda m: values.get(m.group(1)) or m.group(2) or "", node).replace("$$", "$")


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return _with(_env_file(CLUSTER_ENV), yaml.safe_load(COMPOSE_TEXT))


def _active(compose: dict[str, Any], profiles: set[str]) -> set[str]:
    return {name for name, s in compose["services"].items() if not set(s.get("profiles", [])) or
            set(s["profiles"]) & profiles}


def test_the_cluster_profile_is_valid_compose(cluster: dict[str, Any], validator: jsonschema.Draft7Validator) -> None:
    assert _env_file(CLUSTER_ENV)["COMPOSE_PROFILES"] == "cluster"
    assert _errors(validator, cluster) == []


def test_by_default_one_broker_runs_and_the_profile_adds_two(compose: dict[str, Any],
                                                             cluster: dict[str, Any]) -> None:
    assert not {"kafka-2", "kafka-3"} & _active(compose, set())
    assert set(CLUSTER_NODES) <= _active(cluster, {"cluster"})
    assert compose["services"]["topics"]["environment"]["SCOUT_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_the_three_brokers_form_one_quorum(cluster: dict[str, Any]) -> None:
    envs = [cluster["services"][name]["environment"] for name in CLUSTER_NODES]
    assert [int(env["KAFKA_NODE_ID"]) for env in envs] == [1, 2, 3]
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs}
    assert voters == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    for name, env in zip(CLUSTER_NODES, envs, strict=True):
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert cluster["services"][name]["hostname"] == name
        assert (env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"], env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == ("3", "2")
    volumes = [cluster["services"][name]["volumes"][0].split(":")[0] for name in CLUSTER_NODES]
    assert len(set(volumes)) == 3 and set(volumes) <= set(cluster["volumes"])


def test_scout_reaches_every_broker_and_waits_for_all_three_before_creating_topics(
        cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from scout.kafka import plan_replication

    services = cluster["services"]
    for name in ("topics", "api", "worker"):
        assert services[name]["environment"]["SCOUT_KAFKA_BOOTSTRAP"] == "kafka:9092,kafka-2:9092,kafka-3:9092"
        for node in CLUSTER_NODES:  # fewer live brokers would give the topics fewer copies
            assert services[name]["depends_on"][node]["condition"] == "service_healthy", (name, node)
        assert services[name]["depends_on"]["kafka-2"]["required"] is False  # ignored without the profile
    plan = plan_replication(_settings_of(services["topics"], monkeypatch), 3)
    assert (plan.factor, plan.min_insync) == (3, 2)
