"""scripts/ci/prometheus_operator.py, the ServiceMonitor rendering CI's node runs in place of the
Prometheus Operator and Prometheus' Kubernetes discovery: which ServiceMonitors a Prometheus
object takes, which Services' addresses each of their endpoints targets, and that Prometheus' own
promtool accepts the configuration.
That Prometheus then scrapes serving on a real cluster is the cluster test's (lab 17)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.scripts import ci_script

operator = ci_script("prometheus_operator")

NAMESPACES = [
    {"metadata": {"name": "mlops-lab"}},
    {"metadata": {"name": "monitoring"}},
    {"metadata": {"name": "team-a", "labels": {"monitored": "yes"}}},
]


def prometheus(**spec) -> dict:
    return {"metadata": {"name": "kps", "namespace": "monitoring"}, "spec": spec}


KPS = prometheus(
    serviceMonitorSelector={"matchLabels": {"release": "kps"}}, serviceMonitorNamespaceSelector={}
)


def monitor(name: str, namespace: str = "mlops-lab", port: str = "http", **labels) -> dict:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [{"port": port, "path": "/metrics", "interval": "15s"}],
        },
    }


SERVING_LABELS = {"app.kubernetes.io/name": "serving", "app.kubernetes.io/part-of": "mlops-lab"}


def service(name: str, namespace: str = "mlops-lab", **labels) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}}


def endpoints(name: str, ready: list[str], port: str = "http", namespace: str = "mlops-lab"):
    return {
        "metadata": {"name": name, "namespace": namespace},
        "subsets": [
            {
                "addresses": [
                    {"ip": ip, "targetRef": {"kind": "Pod", "name": f"{name}-{i}"}}
                    for i, ip in enumerate(ready)
                ],
                "notReadyAddresses": [{"ip": "172.17.0.99"}],
                "ports": [{"name": port, "port": 3000}, {"name": "grpc", "port": 3001}],
            }
        ],
    }


SERVICES = [
    service("serving", **SERVING_LABELS),
    service("mlflow", **{"app.kubernetes.io/name": "mlflow"}),
    service("api", namespace="team-a", **{"app.kubernetes.io/name": "api"}),
    service("node", namespace="monitoring", **{"app.kubernetes.io/name": "node"}),
]
ENDPOINTS = [
    endpoints("serving", ["172.17.0.5", "172.17.0.6"]),
    endpoints("mlflow", ["172.17.0.7"]),
    endpoints("api", ["172.17.0.8"], namespace="team-a"),
    endpoints("node", ["172.17.0.9"], namespace="monitoring"),
]


def rendered(prometheuses: list[dict], monitors: list[dict]) -> dict[str, list[dict]]:
    config = operator.render(
        prometheuses, monitors, NAMESPACES, SERVICES, ENDPOINTS, "127.0.0.1:9093"
    )
    return {job["job_name"]: job["static_configs"] for job in config["scrape_configs"]}


def test_the_prometheus_object_takes_service_monitors_by_label_and_namespace() -> None:
    serving = monitor("serving", release="kps")
    unlabelled = monitor("mlflow")
    elsewhere = monitor("api", namespace="team-a", release="kps")
    assert list(rendered([KPS], [serving, unlabelled, elsewhere])) == [
        "serviceMonitor/mlops-lab/serving/0",
        "serviceMonitor/team-a/api/0",
    ]
    # Namespaces by label; none given: the Prometheus object's own only.
    by_label = prometheus(
        serviceMonitorSelector={"matchLabels": {"release": "kps"}},
        serviceMonitorNamespaceSelector={"matchLabels": {"monitored": "yes"}},
    )
    assert list(rendered([by_label], [serving, elsewhere])) == ["serviceMonitor/team-a/api/0"]
    own = prometheus(serviceMonitorSelector={})
    assert list(rendered([own], [serving, monitor("node", namespace="monitoring")])) == [
        "serviceMonitor/monitoring/node/0"
    ]
    # No selector at all takes nothing; no Prometheus object, nothing is scraped.
    assert rendered([prometheus(serviceMonitorNamespaceSelector={})], [serving]) == {}
    assert rendered([], [serving]) == {}


def test_a_job_targets_its_services_addresses_on_the_named_port() -> None:
    (groups,) = rendered([KPS], [monitor("serving", release="kps")]).values()
    assert groups == [
        {
            "targets": ["172.17.0.5:3000"],
            "labels": {
                "namespace": "mlops-lab",
                "service": "serving",
                "job": "serving",
                "endpoint": "http",
                "pod": "serving-0",
            },
        },
        {
            "targets": ["172.17.0.6:3000"],
            "labels": {
                "namespace": "mlops-lab",
                "service": "serving",
                "job": "serving",
                "endpoint": "http",
                "pod": "serving-1",
            },
        },
        {
            "targets": ["172.17.0.99:3000"],
            "labels": {
                "namespace": "mlops-lab",
                "service": "serving",
                "job": "serving",
                "endpoint": "http",
            },
        },
    ]


def test_a_port_name_or_selector_that_matches_nothing_leaves_the_job_empty() -> None:
    # The links lab 17 breaks after the Prometheus object takes the ServiceMonitor.
    wrong_port = monitor("serving", release="kps", port="web")
    wrong_selector = monitor("serving", release="kps")
    wrong_selector["spec"]["selector"] = {"matchLabels": {"app": "serving"}}
    other_namespace = monitor("serving", release="kps")
    other_namespace["spec"]["namespaceSelector"] = {"matchNames": ["default"]}
    for broken in (wrong_port, wrong_selector, other_namespace):
        assert rendered([KPS], [broken]) == {"serviceMonitor/mlops-lab/serving/0": []}
    anywhere = monitor("api", release="kps")
    anywhere["spec"]["namespaceSelector"] = {"any": True}
    (groups,) = rendered([KPS], [anywhere]).values()
    assert [g["targets"] for g in groups] == [["172.17.0.8:3000"], ["172.17.0.99:3000"]]


@pytest.mark.parametrize(
    ("expression", "labels", "kept"),
    [
        ({"key": "tier", "operator": "In", "values": ["web", "api"]}, {"tier": "api"}, True),
        ({"key": "tier", "operator": "In", "values": ["web"]}, {"tier": "api"}, False),
        ({"key": "tier", "operator": "NotIn", "values": ["web"]}, {"tier": "api"}, True),
        ({"key": "tier", "operator": "NotIn", "values": ["web"]}, {}, True),
        ({"key": "tier", "operator": "NotIn", "values": ["api"]}, {"tier": "api"}, False),
        ({"key": "tier", "operator": "Exists"}, {"tier": ""}, True),
        ({"key": "tier", "operator": "Exists"}, {}, False),
        ({"key": "tier", "operator": "DoesNotExist"}, {}, True),
        ({"key": "tier", "operator": "DoesNotExist"}, {"tier": "api"}, False),
        ({"key": "tier", "operator": "Near", "values": ["api"]}, {"tier": "api"}, False),
    ],
)
def test_match_expressions_select_as_the_api_does(expression, labels, kept) -> None:
    assert operator.selects({"matchExpressions": [expression]}, labels) is kept


def test_promtool_accepts_the_configuration(tmp_path: Path) -> None:
    monitors = [monitor("serving", release="kps"), monitor("mlflow", release="kps")]
    monitors[1]["spec"]["namespaceSelector"] = {"any": True}
    config = operator.render([KPS], monitors, NAMESPACES, SERVICES, ENDPOINTS, "127.0.0.1:9093")
    path = tmp_path / "prometheus.yml"
    path.write_text(json.dumps(config))
    checked = subprocess.run(
        ["promtool", "check", "config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
