"""What can be validated here of deploy/: compose and the k8s manifests parse; every env var
they set exists in the services' settings; every port and probe path exists; Prometheus
scrapes every process; the dashboard's and alert rules' queries name metrics that exist."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import customs.app
import customs.delivery  # noqa: F401
import servicekit.consumer
import servicekit.relay
import servicekit.worker_web  # noqa: F401
from customs.settings import Settings as CustomsSettings
from inspection.settings import Settings as InspectionSettings
from registry.settings import Settings as RegistrySettings
from scoring.__main__ import SPEC as SCORING
from scoring.settings import Settings as ScoringSettings
from servicekit.settings import BaseServiceSettings

from helpers import service_client

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SETTINGS: dict[str, type[BaseServiceSettings]] = {
    "REGISTRY": RegistrySettings,
    "INSPECTION": InspectionSettings,
    "CUSTOMS": CustomsSettings,
    "SCORING": ScoringSettings,
}
SHARED = {
    alias
    for field in BaseServiceSettings.model_fields.values()
    for alias in getattr(field.validation_alias, "choices", ())
    if isinstance(alias, str) and alias.isupper()
}
"""The settings every service reads without its prefix (their upper-case aliases)."""
PORTS = {name.lower(): cls().port for name, cls in SETTINGS.items()}
OFFSETS = {"api": 0, "worker": 100, "relay": 200}
PROBES = {"/healthz", "/readyz"}


def known_setting(name: str) -> bool:
    if name in SHARED:
        return True
    prefix, _, field = name.partition("_")
    cls = SETTINGS.get(prefix)
    return cls is not None and field.lower() in cls.model_fields


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def k8s_docs() -> Iterator[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        yield from (d for d in yaml.safe_load_all((DEPLOY / "k8s" / resource).read_text()) if d)


def test_compose_runs_kafka_in_kraft_with_three_brokers_and_every_process(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    brokers = [s for name, s in services.items() if name.startswith("kafka-")]
    assert len(brokers) == 3
    for broker in brokers:
        env = broker["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert "postgres" in services and "prometheus" in services and "grafana" in services
    init = (DEPLOY / "postgres" / "init.sql").read_text()
    for name in PORTS:
        assert f"CREATE DATABASE {name};" in init
        assert services[f"{name}-migrate"]["command"] == ["python", "-m", name, "migrate"]
        for process in OFFSETS:
            assert services[f"{name}-{process}"]["command"] == ["python", "-m", name, process]
    assert services["topics"]["command"][:3] == ["python", "-m", "servicekit.topics"]


def test_every_env_var_compose_sets_is_a_real_setting(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("image") != "ucx:latest":
            continue
        for key, value in service.get("environment", {}).items():
            assert known_setting(key), f"{name}: {key} is no setting"
            if key.endswith("_IDEMPOTENT_PRODUCER"):
                assert value == "true"


def test_compose_probes_hit_each_process_port_and_a_real_path(compose: dict[str, Any]) -> None:
    for name, port in PORTS.items():
        for process, offset in OFFSETS.items():
            test = " ".join(compose["services"][f"{name}-{process}"]["healthcheck"]["test"])
            url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", test)
            assert url is not None
            assert int(url.group(1)) == port + offset
            assert url.group(2) in PROBES


def test_the_api_apps_serve_the_probe_paths(tmp_path: Path) -> None:
    app = SCORING.create_app(ScoringSettings(database_url=f"sqlite:///{tmp_path / 's.db'}"))
    paths = {getattr(route, "path", None) for route in app.routes}
    assert PROBES | {"/metrics"} <= paths


def test_prometheus_scrapes_every_process_of_every_service(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    wanted = {
        f"{name}-{process}:{port + offset}"
        for name, port in PORTS.items()
        for process, offset in OFFSETS.items()
    }
    assert targets == wanted
    for target in targets:
        assert target.split(":")[0] in compose["services"]


@pytest.fixture(scope="module")
def metric_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name a ucx process exposes: the module-level metrics, plus the HTTP ones
    the instrumentator creates, scraped from a real app after one request."""
    url = f"sqlite:///{tmp_path_factory.mktemp('metrics') / 'scoring.db'}"
    clients = service_client(SCORING, url)
    client, _ = next(clients)
    client.get("/healthz")
    client.get("/v1/rankings")
    text = client.get("/metrics").text + generate_latest(REGISTRY).decode()
    next(clients, None)
    names = set()
    for family in text_string_to_metric_families(text):
        # a labelled metric no one has used yet has no samples: name them by its type
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names |= {family.name + x for x in suffixes.get(family.type, [""])}
        names |= {sample.name for sample in family.samples}
    return names


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\bucx_[a-z_]+", expr))


def test_the_dashboard_and_the_alerts_name_metrics_that_exist(metric_names: set[str]) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ucx-overview.json").read_text())
    used = {
        m for panel in dashboard["panels"] for t in panel["targets"] for m in metrics_in(t["expr"])
    }
    alerts = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "alerting" / "ucx-alerts.yaml").read_text()
    )
    rules = [r for group in alerts["groups"] for r in group["rules"]]
    assert {r["title"] for r in rules} >= {
        "Consumer lag growing", "Dead-letter topic not empty",
        "Outbox oldest unsent record too old", "Process not ready", "Webhook endpoint disabled",
    }  # fmt: skip
    used |= {m for r in rules for d in r["data"] for m in metrics_in(d["model"].get("expr", ""))}
    # the metrics the issue asks for are all on the dashboard
    assert {
        "ucx_http_requests_total", "ucx_outbox_backlog", "ucx_outbox_oldest_unsent_age_seconds",
        "ucx_relay_published_total", "ucx_relay_errors_total", "ucx_consumer_lag",
        "ucx_consumer_batch_seconds_bucket", "ucx_dlq_events_total",
        "ucx_webhook_deliveries_total", "ucx_webhook_delivery_seconds_bucket",
        "ucx_assessments", "ucx_ledger_entries", "ucx_ready",
    } <= used  # fmt: skip
    missing = sorted(used - metric_names)
    assert missing == [], f"queried but never exposed: {missing}"


def test_k8s_manifests_parse_and_probe_every_process() -> None:
    docs = list(k8s_docs())
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {f"{n}-{p}" for n in PORTS for p in OFFSETS}
    budgets = {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"}
    assert budgets == set(deployments)
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"} == {
        f"{n}-api" for n in PORTS
    }
    for name, deployment in deployments.items():
        service, process = name.split("-")
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        port = PORTS[service] + OFFSETS[process]
        assert container["ports"][0]["containerPort"] == port
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] == port
            assert container[probe]["httpGet"]["path"] in PROBES
        assert container["resources"]["requests"]
        for env in container["env"]:
            assert known_setting(env["name"]), f"{name}: {env['name']} is no setting"


def test_k8s_config_and_secret_keys_are_real_settings() -> None:
    docs = list(k8s_docs())
    [config] = [d for d in docs if d["kind"] == "ConfigMap"]
    assert all(known_setting(k) for k in config["data"])
    secret = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    assert all(known_setting(k) for k in secret["stringData"])
