"""The manifests agree with the local runtime: service names, ports, commands, health and scrape
paths, alert rules, routing, dashboards and images come from the same settings and code."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from mlflow.server.security_utils import is_allowed_host_header

from mlops_lab.runtime import services as catalog
from mlops_lab.runtime.kube import assets as kube_assets
from mlops_lab.runtime.kube import plan as kube_plan
from monitoring import assets, configs, rules
from platform_core.settings import REPO_ROOT, Settings
from tests.k8s.conftest import VARIANTS, named, of_kind, pod_specs

SETTINGS = assets.default_settings()
IMAGES = {f"mlops-lab-{path.parent.name}" for path in (REPO_ROOT / "images").glob("*/Dockerfile")}


def test_committed_files_match_the_generator() -> None:
    stale = [
        str(path.relative_to(REPO_ROOT))
        for path, text in kube_assets.expected_files().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"out of date, run `make k8s-assets`: {stale}"


def _containers(documents: list[dict]) -> dict[str, dict]:
    return {name: pod["containers"][0] for name, pod in pod_specs(documents).items()}


def _selected_container(documents: list[dict], selector: dict) -> dict:
    pods = [
        doc["spec"]["template"]
        for doc in of_kind(documents, "Deployment", "StatefulSet")
        if selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(pods) == 1, f"{selector} selects {len(pods)} workloads"
    return pods[0]["spec"]["containers"][0]


def test_workloads_are_the_local_runtimes_services(rendered) -> None:
    names = set(pod_specs(rendered["base"]))
    assert names == {*kube_assets.WORKLOADS, "postgres"}
    local = {s.name for s in catalog.SERVICES if not s.on_demand}
    assert set(kube_assets.WORKLOADS) <= local


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_service_port_is_a_container_port_and_the_settings_port(rendered, variant) -> None:
    docs = rendered[variant]
    for service in of_kind(docs, "Service"):
        name = service["metadata"]["name"]
        container = _selected_container(docs, service["spec"]["selector"])
        container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, f"{name}: {port['targetPort']}"
            assert port["port"] == container_ports[port["targetPort"]], name
            if name in kube_assets.WORKLOADS:
                assert port["name"] == "http", name
                assert port["port"] == catalog.by_name(name).port(SETTINGS), name


def test_python_services_run_the_local_runtimes_modules(rendered) -> None:
    containers = _containers(rendered["base"])
    for name in ("flows", "serving", "drift-monitor", "alert-receiver"):
        local = catalog.by_name(name).command(SETTINGS)
        assert containers[name]["command"] == ["python", *local[1:]], name


def _flags(argv: list[str]) -> set[str]:
    return {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}


def test_mlflow_and_prefect_servers_get_the_local_runtimes_flags(rendered) -> None:
    containers = _containers(rendered["base"])
    mlflow = containers["mlflow"]
    env = {var["name"] for var in mlflow["env"]}
    # The backend URI holds the database password: it comes from the Secret, as
    # MLFLOW_BACKEND_STORE_URI, the variable `mlflow server` reads for --backend-store-uri.
    assert _flags(catalog._mlflow_command(SETTINGS)) - {"--backend-store-uri"} == _flags(
        mlflow["args"]
    )
    assert "MLFLOW_BACKEND_STORE_URI" in env
    assert set(catalog._mlflow_env(SETTINGS)) <= env
    prefect = containers["prefect"]
    assert _flags(catalog._prefect_command(SETTINGS)) == _flags(prefect["args"])
    assert set(catalog._prefect_env(SETTINGS)) - {"PREFECT_HOME"} <= {
        var["name"] for var in prefect["env"]
    }


@pytest.mark.parametrize("variant", ["base", "cloud"])
def test_mlflow_accepts_the_host_names_its_clients_use(rendered, variant) -> None:
    mlflow = _containers(rendered[variant])["mlflow"]
    (allowed,) = [
        arg.split("=", 1)[1] for arg in mlflow["args"] if arg.startswith("--allowed-hosts=")
    ]
    # The kubelet expands $(POD_IP) from the pod's own address.
    (pod_ip,) = [var for var in mlflow["env"] if var["name"] == "POD_IP"]
    assert pod_ip["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    # MLflow's own matching: exact names, or fnmatch patterns such as ``127.0.0.1:*``.
    patterns = allowed.replace("$(POD_IP)", "10.244.0.12").split(",")
    port = SETTINGS.mlflow_port
    # Prometheus scrapes the pod by its address (a ServiceMonitor's targets are endpoints): it
    # was refused (403), so MLflow's target was down wherever kube-prometheus-stack ran.
    assert is_allowed_host_header(patterns, f"10.244.0.12:{port}")
    assert not is_allowed_host_header(patterns, f"10.244.0.13:{port}")
    if variant == "cloud":
        assert is_allowed_host_header(patterns, "mlflow.example.com")
        return
    for host in ("mlflow", "mlflow.mlops-lab", "mlflow.mlops-lab.svc"):
        for header in (host, f"{host}:{port}"):
            assert is_allowed_host_header(patterns, header), header
    # From the host: a node port mapping on the settings' port, or `kubectl port-forward` on
    # whatever free port the machine (or a test) uses.
    for host in ("127.0.0.1", "localhost"):
        for header in (host, f"{host}:{port}", f"{host}:54321"):
            assert is_allowed_host_header(patterns, header), header
    # Still a guard against DNS rebinding: any other name is refused.
    for header in ("evil.example.com", "evil.example.com:5000", "127.0.0.1.evil.example.com"):
        assert not is_allowed_host_header(patterns, header), header


@pytest.mark.parametrize("variant", VARIANTS)
def test_probes_use_the_local_runtimes_health_paths(rendered, variant) -> None:
    for name, container in _containers(rendered[variant]).items():
        if name not in kube_assets.WORKLOADS:
            continue
        service = catalog.by_name(name)
        paths = {
            "startupProbe": service.health_path,
            "livenessProbe": service.health_path,
            "readinessProbe": service.ready_path or service.health_path,
        }
        for probe, path in paths.items():
            assert container[probe]["httpGet"] == {"path": path, "port": "http"}, (name, probe)


def test_pods_read_the_generated_settings_as_a_process_of_the_local_runtime_would(
    rendered, monkeypatch
) -> None:
    (config,) = [
        doc
        for doc in of_kind(rendered["base"], "ConfigMap")
        if doc["metadata"]["name"].startswith("mlops-lab-settings")
    ]
    for name, container in _containers(rendered["base"]).items():
        if name in kube_assets.WORKLOADS:
            refs = [source["configMapRef"]["name"] for source in container["envFrom"]]
            assert refs == [config["metadata"]["name"]], name
    for key, value in config["data"].items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # pyright: ignore[reportCallIssue]
    assert settings.host == "0.0.0.0" and settings.allow_remote_access
    assert settings.service_hosts == kube_assets.SERVICE_HOSTS
    assert settings.mlflow_url == f"http://mlflow:{SETTINGS.mlflow_port}"
    expected = settings.to_env()
    for key, value in config["data"].items():
        assert expected[key] == value, key


def test_secrets_are_the_ones_k8s_readme_documents(rendered) -> None:
    readme = (REPO_ROOT / "k8s" / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", readme, flags=re.MULTILINE))
    used = {
        ref["valueFrom"]["secretKeyRef"]["key"]
        for variant in VARIANTS
        for container in _containers(rendered[variant]).values()
        for ref in container.get("env", [])
        if "secretKeyRef" in ref.get("valueFrom", {})
    }
    assert used and used <= documented, f"undocumented Secret keys: {used - documented}"


@pytest.mark.parametrize("variant", ["kind", "cloud"])
def test_every_service_monitor_selects_a_service_and_its_named_port(rendered, variant) -> None:
    docs = rendered[variant]
    monitors = of_kind(docs, "ServiceMonitor")
    scraped = {s.name: s.metrics_path for s in kube_assets.scraped_services()}
    assert {m["metadata"]["name"] for m in monitors} == set(scraped)
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s
            for s in of_kind(docs, "Service")
            if selector.items() <= s["metadata"]["labels"].items()
        ]
        assert len(services) == 1, monitor["metadata"]["name"]
        port_names = {port["name"] for port in services[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == scraped[services[0]["metadata"]["name"]]
            assert endpoint["interval"] == rules.duration(SETTINGS.scrape_interval_s)


def test_prometheus_rule_holds_exactly_the_local_runtimes_rules(rendered) -> None:
    rule = named(rendered["kind"], "PrometheusRule", kube_assets.NAMESPACE)
    committed = yaml.safe_load(rules.COMMITTED_RULES.read_text())
    assert rule["spec"] == rules.rules_document(SETTINGS) == committed


def test_dashboard_config_maps_hold_exactly_the_committed_dashboards(rendered) -> None:
    maps = [
        doc
        for doc in of_kind(rendered["kind"], "ConfigMap")
        if doc["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    ]
    held = {key: text for doc in maps for key, text in doc["data"].items()}
    committed = {path.name: path.read_text() for path in assets.DASHBOARDS_DIR.glob("*.json")}
    assert held == committed


def test_alertmanager_config_routes_like_the_local_alertmanager(rendered) -> None:
    spec = named(rendered["kind"], "AlertmanagerConfig", kube_assets.NAMESPACE)["spec"]
    local = configs.alertmanager_config(SETTINGS)
    assert spec["route"]["receiver"] == local["route"]["receiver"]
    assert spec["route"]["groupWait"] == local["route"]["group_wait"]
    retrain = [r for r in spec["route"]["routes"] if r["receiver"] == "retrain"]
    assert retrain[0]["matchers"] == [{"name": "action", "value": "retrain", "matchType": "="}]
    receiver = named(rendered["kind"], "Service", "alert-receiver")
    host = f"{receiver['metadata']['name']}.{receiver['metadata']['namespace']}.svc"
    local_paths = {
        r["name"]: r["webhook_configs"][0]["url"].split(str(SETTINGS.alert_receiver_port), 1)[1]
        for r in local["receivers"]
    }
    for r in spec["receivers"]:
        url = r["webhookConfigs"][0]["url"]
        port = receiver["spec"]["ports"][0]["port"]
        assert url == f"http://{host}:{port}{local_paths[r['name']]}", r["name"]


@pytest.mark.parametrize("variant", ["base", "ci", "kind"])
def test_every_image_is_one_the_build_makes(rendered, variant) -> None:
    for name, container in _containers(rendered[variant]).items():
        image, _, tag = container["image"].partition(":")
        assert image in IMAGES and tag, f"{name}: {container['image']}"


def test_kind_node_ports_publish_each_ui_at_the_local_runtimes_port(rendered) -> None:
    mappings = json.loads(kube_assets.PORTS_JSON.read_text())
    by_name = {m["name"]: m for m in mappings}
    assert set(by_name) == set(kube_assets.WORKLOADS)
    for name, mapping in by_name.items():
        service = named(rendered["kind"], "Service", name)
        assert service["spec"]["type"] == "NodePort"
        (port,) = service["spec"]["ports"]
        assert port["nodePort"] == mapping["node_port"], name
        assert mapping["host_port"] == catalog.by_name(name).port(SETTINGS), name
        assert 30000 <= mapping["node_port"] <= 32767, name
    readme = (REPO_ROOT / "k8s" / "README.md").read_text()
    for m in mappings:
        row = f"| {m['name']} | {m['host_port']} | {m['node_port']} |"
        assert row in readme, f"k8s/README.md's NodePort table lacks {row}"


def test_fixed_node_ports_are_in_the_band_random_allocation_avoids() -> None:
    """Since Kubernetes 1.29 (KEP-3668) a random NodePort comes from above 30085 while that band
    lasts: kube-prometheus-stack's reloader-web ports are random and allocated before `kubectl
    apply` asks for the fixed ones, which therefore sit in 30000-30085."""
    fixed = {**kube_assets.NODE_PORTS, **kube_plan.MONITORING_NODE_PORTS}
    assert all(30000 <= port <= 30085 for port in fixed.values()), fixed
    assert len(set(fixed.values())) == len(fixed), fixed


def test_readme_names_every_port_each_runtime_binds() -> None:
    """README's "Before `make up`" table: the settings' ports, and which the kind node publishes."""
    readme = (REPO_ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) \| `([a-z-]+)` \| [^|]+ \| ([^|]+) \|$", readme, re.MULTILINE)
    assert {name: int(port) for port, name, _ in rows} == {
        service.name: service.port(SETTINGS) for service in catalog.SERVICES
    }
    published = {name for _, name, kind in rows if "published by the kind node" in kind}
    mappings = kube_plan.port_mappings(SETTINGS, kube_plan.read_node_ports())
    assert published == {mapping["name"] for mapping in mappings}


def test_cloud_overlay_patches_landed_where_they_were_meant(rendered) -> None:
    """Its JSON patches address list items by index: a reordered base must not misplace them."""
    containers = _containers(rendered["cloud"])
    mlflow_args = containers["mlflow"]["args"]
    assert mlflow_args[0].startswith("--artifacts-destination=s3://")
    assert mlflow_args[5].startswith("--allowed-hosts=") and "mlflow.example.com" in mlflow_args[5]
    prefect_env = {var["name"]: var.get("value") for var in containers["prefect"]["env"]}
    assert prefect_env["PREFECT_UI_API_URL"] == "https://prefect.example.com/api"
    assert "postgres" not in pod_specs(rendered["cloud"])
