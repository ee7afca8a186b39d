"""The deployment files (Dockerfile, docker-compose.yml, Prometheus, Grafana) are complete and consistent.

Nothing here needs Docker: the files are parsed and cross-checked against each other and against the
metrics that ``observability.metrics`` really exports. When ``promtool`` is on PATH the Prometheus
configuration, the alerting rules (with their unit tests) and every dashboard query are checked by it too.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import observability.metrics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROMETHEUS_DIR = ROOT / "observability" / "prometheus"
GRAFANA_DIR = ROOT / "observability" / "grafana"
DASHBOARD_FILE = GRAFANA_DIR / "dashboards" / "pipeline-overview.json"

SCOUT_SERVICES = {"migrate", "topics", "api", "worker", "scheduler"}
ALL_SERVICES = SCOUT_SERVICES | {"kafka", "postgres", "prometheus", "alertmanager", "grafana"}
# Where each scout process must not start before (service -> {dependency: condition}).
REQUIRED_DEPENDENCIES = {
    "migrate": {"postgres": "service_healthy"},
    "topics": {"kafka": "service_healthy"},
    "api": {"migrate": "service_completed_successfully", "topics": "service_completed_successfully",
            "kafka": "service_healthy"},
    "worker": {"migrate": "service_completed_successfully", "topics": "service_completed_successfully"},
    "scheduler": {"migrate": "service_completed_successfully"},
}
RUNBOOK_URL = re.compile(r"^docs/RUNBOOK\.md#[a-z0-9][a-z0-9-]*$")
METRIC_TOKEN = re.compile(r"\bscout_[a-zA-Z0-9_:]+")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


# --- helpers ---------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` interpolation with an empty environment (the defaults)."""
    return INTERPOLATION.sub(lambda m: m.group("default") or "", value).replace("$$", "$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of compose's two forms it uses, interpolated."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): interpolate(str(v)) for k, v in env.items()}


def exported_series() -> set[str]:
    """Every series name the processes can export, from the metric objects in observability.metrics."""
    names: set[str] = set()
    for obj in vars(observability.metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        for family in obj.describe():
            if family.type == "counter":
                names |= {f"{family.name}_total", f"{family.name}_created"}
            elif family.type == "histogram":
                names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count", "created")}
            elif family.type == "gauge":
                names.add(family.name)
            else:  # a new metric type: teach this helper its series names
                raise AssertionError(f"unexpected metric type {family.type} for {family.name}")
    return names


def unknown_metrics(expr: str) -> set[str]:
    return set(METRIC_TOKEN.findall(expr)) - exported_series()


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # panels inside collapsed rows
    return panels


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in rule_files():
        for group in load_yaml(path)["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules


def rule_files() -> list[Path]:
    files: list[Path] = []
    for pattern in load_yaml(PROMETHEUS_DIR / "prometheus.yml")["rule_files"]:
        files.extend(sorted(PROMETHEUS_DIR.glob(pattern)))
    return files


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))


# --- the metrics module itself --------------------------------------------------------------------


def test_metric_names_are_collected_from_the_metrics_module() -> None:
    names = exported_series()
    assert "scout_ingest_requests_total" in names
    assert "scout_ingest_request_seconds_bucket" in names
    assert "scout_gold_last_refresh_timestamp_seconds" in names
    assert "scout_ingest_requests" not in names  # a counter's series carry _total
    assert unknown_metrics('rate(scout_no_such_metric_total[5m])') == {"scout_no_such_metric_total"}


# --- Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_builds_a_non_root_scout_image() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line.strip() for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in instructions
    assert any(re.fullmatch(r"FROM \$\{PYTHON_IMAGE\}( AS \w+)?", line) for line in instructions)
    assert re.search(r"^RUN pip install \.", text, re.MULTILINE), "the image installs the project"
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users, "the runtime stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    # The worker needs an existing, writable SCOUT_DATA_DIR (Faust creates its datadir inside it).
    data_dir = re.search(r"SCOUT_DATA_DIR=(\S+)", text)
    assert data_dir, "the image sets SCOUT_DATA_DIR"
    assert re.search(rf"install -d -o {users[-1].split(':')[0]} .*{re.escape(data_dir.group(1))}\b", text)
    entrypoints = [line for line in instructions if line.startswith("ENTRYPOINT ")]
    assert entrypoints[-1] == 'ENTRYPOINT ["scout"]'


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".git/", ".venv/", ".scout/", ".env"):
        assert entry in ignored


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore's rule for one path: the last pattern matching it or a folder above it decides; `!` keeps."""
    decision = False
    parts = path.strip("/").split("/")
    for pattern in patterns:
        keep = pattern.startswith("!")
        bare = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatch("/".join(parts[:n]), bare) for n in range(1, len(parts) + 1)):
            decision = not keep
    return decision


def test_everything_the_dockerfile_copies_is_in_the_build_context() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")]
    sources = [source for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
               if line.startswith("COPY ") and "--from" not in line for source in line.split()[1:-1]]
    assert "docs/RUNBOOK.md" in sources  # the API serves it (GET /status/runbook)
    assert [s for s in sources if _ignored(s, patterns)] == []
    assert _ignored("docs/BENCHMARKS.md", patterns) and _ignored("tests/unit", patterns)


# --- docker-compose.yml ----------------------------------------------------------------------------


def test_compose_defines_every_service(services: dict[str, Any]) -> None:
    assert set(services) >= ALL_SERVICES


def test_images_are_pinned(services: dict[str, Any]) -> None:
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", services["kafka"]["image"])
    assert re.fullmatch(r"postgres:16(\.\d+)*(-[a-z0-9.]+)?", services["postgres"]["image"])
    for name in ("prometheus", "alertmanager", "grafana"):
        image = services[name]["image"]
        assert ":" in image, f"{name} image has no tag: {image}"
        assert not image.endswith((":latest", ":main")), f"{name} image is not pinned: {image}"


def test_scout_services_share_one_image_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    images = {interpolate(services[name]["image"]) for name in SCOUT_SERVICES}
    assert len(images) == 1, images
    for name in SCOUT_SERVICES:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build["context"]
        assert (ROOT / context / "Dockerfile").is_file()
    # Nothing else runs the Scout image.
    others = {name for name, svc in services.items() if interpolate(svc.get("image", "")) in images}
    assert others == SCOUT_SERVICES


def test_scout_services_get_database_and_kafka_settings(services: dict[str, Any]) -> None:
    postgres = environment(services["postgres"])
    kafka = environment(services["kafka"])
    advertised = {urlsplit(listener).netloc for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    for name in SCOUT_SERVICES:
        env = environment(services[name])
        assert "SCOUT_DATABASE_URL" in env, name
        assert "SCOUT_KAFKA_BOOTSTRAP" in env, name
        url = urlsplit(env["SCOUT_DATABASE_URL"])
        assert url.scheme in {"postgresql", "postgres"}
        assert (url.hostname, url.port) == ("postgres", 5432), name
        if url.username == postgres["POSTGRES_USER"]:  # the owner: migrate and its admin commands
            assert url.password == postgres["POSTGRES_PASSWORD"], name
        else:  # a least-privilege login from the init script (tests/unit/test_compose.py checks its roles)
            assert url.username in {"scout_api", "scout_worker"} and url.password, name
        assert url.path.lstrip("/") == postgres["POSTGRES_DB"], name
        assert set(env["SCOUT_KAFKA_BOOTSTRAP"].split(",")) <= advertised, name


def test_passwords_come_from_the_environment_with_defaults(services: dict[str, Any]) -> None:
    postgres = services["postgres"]["environment"]
    grafana = services["grafana"]["environment"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:-[^}]+\}", str(postgres["POSTGRES_PASSWORD"]))
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:-[^}]+\}", str(grafana["GF_SECURITY_ADMIN_PASSWORD"]))
    assert re.fullmatch(r"\$\{GRAFANA_DB_PASSWORD:-[^}]+\}", str(grafana["GRAFANA_DB_PASSWORD"]))


def test_start_order_is_enforced_with_conditions(services: dict[str, Any]) -> None:
    for name, required in REQUIRED_DEPENDENCIES.items():
        depends_on = services[name].get("depends_on")
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions, not a list"
        for dependency, condition in required.items():
            assert depends_on.get(dependency, {}).get("condition") == condition, (name, dependency)
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, (name, dependency)
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency} to be healthy"
            if spec.get("condition") == "service_completed_successfully":
                assert services[dependency].get("restart") == "no", f"{dependency} is a one-shot service"


def test_health_checks(services: dict[str, Any]) -> None:
    for name in ("kafka", "postgres", "api"):
        test = services[name]["healthcheck"]["test"]
        assert isinstance(test, list) and test[0] in {"CMD", "CMD-SHELL"}, name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])


def test_one_shot_services(services: dict[str, Any]) -> None:
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"  # quoted in YAML: a bare `no` would be False
    assert services["topics"]["restart"] == "no"
    assert services["topics"]["command"] == ["topics", "create"]  # `scout topics create`
    assert "entrypoint" not in services["topics"]


def test_long_running_scout_processes(services: dict[str, Any]) -> None:
    for name in ("api", "worker", "scheduler"):
        assert services[name]["command"] == [name]
        assert services[name]["restart"] in {"unless-stopped", "always", "on-failure"}
    api_env = environment(services["api"])
    assert api_env["SCOUT_API_HOST"] == "0.0.0.0"
    port = int(api_env.get("SCOUT_API_PORT", "8000"))
    assert any(interpolate(str(p)).rsplit(":", 1)[-1] == str(port) for p in services["api"]["ports"])


def test_worker_can_be_scaled(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "hostname" not in worker


def test_kafka_is_a_single_kraft_node(services: dict[str, Any]) -> None:
    env = environment(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    listener_names = {listener.split("://")[0] for listener in env["KAFKA_LISTENERS"].split(",")}
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listener_names
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_bind_mounts_are_relative_and_exist(services: dict[str, Any], compose: dict[str, Any]) -> None:
    named_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in named_volumes, f"{name}: {source} is neither ./relative nor a named volume"


def test_observability_mounts(services: dict[str, Any]) -> None:
    prometheus = {v.split(":")[0]: v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert prometheus["./observability/prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    grafana = {v.split(":")[0]: v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert grafana["./observability/grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")["providers"]
    assert grafana["./observability/grafana/dashboards"] in {p["options"]["path"] for p in providers}


def test_grafana_gets_the_postgres_reader_credentials(
    services: dict[str, Any], compose: dict[str, Any]
) -> None:
    grafana = environment(services["grafana"])
    init_sql = interpolate(compose["configs"]["postgres-init"]["content"])
    assert f'CREATE ROLE "{grafana["GRAFANA_DB_USER"]}" LOGIN' in init_sql
    assert f"PASSWORD '{grafana['GRAFANA_DB_PASSWORD']}' IN ROLE scout_reader" in init_sql
    targets = {c["target"] for c in services["postgres"]["configs"]}
    assert any(t.startswith("/docker-entrypoint-initdb.d/") and t.endswith(".sql") for t in targets)


# --- Prometheus ------------------------------------------------------------------------------------


def test_prometheus_config_scrapes_the_api() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["scout-api"]
    assert api["metrics_path"] == "/metrics/"
    assert [t for sc in api["static_configs"] for t in sc["targets"]] == ["api:8000"]


def test_rule_files_exist_and_parse() -> None:
    files = rule_files()
    assert files, "prometheus.yml rule_files match no file"
    for path in files:
        groups = load_yaml(path)["groups"]
        assert groups and all(group["rules"] for group in groups), path


def test_every_alert_has_a_runbook_and_known_metrics() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for rule in rules:
        assert RUNBOOK_URL.match(rule["annotations"]["runbook_url"]), rule["alert"]
        assert rule["annotations"].get("summary"), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert not unknown_metrics(rule["expr"]), (rule["alert"], unknown_metrics(rule["expr"]))


def test_the_required_alerts_exist() -> None:
    exprs = [" ".join(rule["expr"].split()) for rule in alert_rules()]
    assert any('scout_ingest_requests_total{outcome="unavailable"}' in e for e in exprs)
    assert any("time() - scout_gold_last_refresh_timestamp_seconds > 300" in e for e in exprs)
    assert any(e == "up == 0" for e in exprs)


# --- Grafana ---------------------------------------------------------------------------------------


def test_grafana_provisioning_parses() -> None:
    datasources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml")
    assert datasources["apiVersion"] == 1
    by_type = {ds["type"]: ds for ds in datasources["datasources"]}
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    postgres = by_type["grafana-postgresql-datasource"]
    assert postgres["url"] == "postgres:5432"
    assert postgres["jsonData"]["database"] == "scout"
    assert postgres["user"].startswith("$"), "the reader's name comes from the environment"
    assert postgres["secureJsonData"]["password"].startswith("$")
    dashboards = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")
    assert dashboards["apiVersion"] == 1
    assert [p["options"]["path"] for p in dashboards["providers"]] == ["/var/lib/grafana/dashboards"]


def test_dashboard_is_valid(dashboard: dict[str, Any]) -> None:
    assert dashboard["title"] == "Pipeline overview"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"])
    panels = dashboard_panels(dashboard)
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_dashboard_queries_use_exported_metrics(dashboard: dict[str, Any]) -> None:
    datasources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    provisioned = {ds["uid"] for ds in datasources}
    queried: set[str] = set()
    for panel in dashboard_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in provisioned, panel["title"]
        assert panel["targets"], panel["title"]
        if panel["datasource"]["type"] != "prometheus":
            continue  # SQL panels: tests/unit/test_dashboards.py
        for target in panel["targets"]:
            expr = target["expr"]
            assert not unknown_metrics(expr), (panel["title"], unknown_metrics(expr))
            assert METRIC_TOKEN.search(expr) or re.fullmatch(r"up(\{.*\})?", expr), panel["title"]
            queried |= set(METRIC_TOKEN.findall(expr))
    for required in ("scout_ingest_requests_total", "scout_ingest_request_seconds_bucket",
                     "scout_stage_rows_total", "scout_dead_letters_total",
                     "scout_gold_refresh_seconds_bucket", "scout_gold_last_refresh_timestamp_seconds"):
        assert required in queried, f"no panel shows {required}"


# --- promtool (make test fetches Debian's into .cache/promtool) -----------------------------------

def _promtool() -> str | None:
    cached = ROOT / ".cache" / "promtool" / "usr" / "bin" / "promtool"
    return str(cached) if cached.exists() else shutil.which("promtool")


def run_promtool(*args: str | Path) -> None:
    promtool = _promtool()
    assert promtool is not None, "promtool not found: `make promtool` fetches it into .cache/promtool"
    result = subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_config_and_rules() -> None:
    run_promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    run_promtool("check", "rules", *rule_files())


def test_promtool_rule_unit_tests() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests
    run_promtool("test", "rules", *tests)


def test_dashboard_queries_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    grafana_vars = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
    rules = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" not in target:
                continue
            expr = target["expr"]
            for var, value in grafana_vars.items():
                expr = expr.replace(var, value)
            record = f"dashboard:panel_{panel['id']}:{target['refId'].lower()}"
            rules.append({"record": record, "expr": expr})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    run_promtool("check", "rules", path)


def test_every_runbook_link_has_its_section() -> None:
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r"^## ([a-z0-9-]+)\s*$", runbook, flags=re.MULTILINE))
    for path in rule_files():
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                url = rule.get("annotations", {}).get("runbook_url", "")
                if url:
                    assert url.startswith("docs/RUNBOOK.md#"), url
                    assert url.split("#", 1)[1] in anchors, f"{rule['alert']}: no section for {url}"
