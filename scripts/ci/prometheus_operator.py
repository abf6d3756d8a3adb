"""What CI's node lacks of the Prometheus Operator: ServiceMonitors made into Prometheus' targets.

kind gets kube-prometheus-stack from its Helm chart; CI's node reaches no chart and no image
registry, so the labs that read Prometheus cannot run there. For the one whose incident is in the
operator's selection (lab 17: serving's ServiceMonitor no longer taken, or taking nothing), the
cluster test runs this loop with Debian's own Prometheus and Alertmanager on this machine:

- Prometheus and Alertmanager start as this process's children, on 127.0.0.1 at the ports the
  platform's settings give them (where the kube runtime looks for kube-prometheus-stack), and
  stop with it;
- every two seconds it lists the ``Prometheus`` objects, ServiceMonitors, Namespaces, Services and
  Endpoints from the API server, and renders what the operator and Prometheus' Kubernetes
  discovery together make of them: for the first Prometheus object, each ServiceMonitor its
  ``serviceMonitorSelector`` and ``serviceMonitorNamespaceSelector`` take (a missing namespace
  selector: the Prometheus object's own namespace only; an empty one: all; a missing
  ServiceMonitor selector: none), and for each of its endpoints one scrape job
  (``serviceMonitor/<namespace>/<name>/<index>``) whose targets are the addresses (ready or
  not) of the Services its ``selector`` selects in the namespaces its ``namespaceSelector``
  names (``matchNames``, ``any``, or its own), on the port its ``port`` names, with the
  operator's target labels (namespace, service, pod, endpoint, job = the Service's name); ``path``,
  ``interval``, ``scrapeTimeout`` and ``scheme`` as given;
- when the rendering changed it writes the configuration and asks Prometheus to reload it.

Debian's Prometheus is built without Kubernetes service discovery, so the targets are written
out as static ones. What is Prometheus' own: the scrapes of the pods on the bridge (this
machine's own traffic, which no NetworkPolicy filters here), the targets page, the series. Left
out: PrometheusRules, AlertmanagerConfigs, PodMonitors, Probes, ``targetPort``, the
``container`` label, relabelings set on a ServiceMonitor, TLS and authentication towards targets.
Alertmanager routes everything to a receiver that sends nothing (the labs' silences need one).

Standard library only: it runs with the system's python3, apart from the project's venv.
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# kube_api.py is beside this script, and a script's own folder is first on its import path.
from kube_api import lister, namespace_labels, selects

GROUP = "/apis/monitoring.coreos.com/v1"


def scrape_jobs(monitor: dict, services: list[dict], endpoints: list[dict]) -> list[dict]:
    """The scrape jobs the operator makes of one ServiceMonitor, one per endpoint, each with the
    addresses Prometheus' Kubernetes discovery would keep: those of the Services its
    ``selector`` selects in the namespaces it names, on the port its ``port`` names."""
    meta, spec = monitor["metadata"], monitor.get("spec") or {}
    namespace_selector = spec.get("namespaceSelector") or {}
    names = namespace_selector.get("matchNames") or [meta["namespace"]]
    selected = {
        (s["metadata"]["namespace"], s["metadata"]["name"])
        for s in services
        if (namespace_selector.get("any") or s["metadata"]["namespace"] in names)
        and selects(spec.get("selector"), s["metadata"].get("labels") or {})
    }
    jobs = []
    for index, endpoint in enumerate(spec.get("endpoints") or []):
        port_name = str(endpoint.get("port", ""))
        job: dict = {
            "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/{index}",
            "honor_labels": bool(endpoint.get("honorLabels", False)),
            "metrics_path": endpoint.get("path", "/metrics"),
            "scheme": endpoint.get("scheme", "http"),
            "static_configs": _targets(endpoints, selected, port_name),
        }
        if "interval" in endpoint:
            job["scrape_interval"] = endpoint["interval"]
        if "scrapeTimeout" in endpoint:
            job["scrape_timeout"] = endpoint["scrapeTimeout"]
        jobs.append(job)
    return jobs


def _targets(endpoints: list[dict], selected: set[tuple[str, str]], port_name: str) -> list[dict]:
    """One target group per address of the ``selected`` Services (namespace, name) on their port
    named ``port_name``. Discovery gives the addresses of pods not ready too (their targets may
    be down), and the operator keeps them."""
    groups = []
    for found in endpoints:
        namespace, service = found["metadata"]["namespace"], found["metadata"]["name"]
        if (namespace, service) not in selected:
            continue
        for subset in found.get("subsets") or []:
            ports = [p["port"] for p in subset.get("ports") or [] if p.get("name") == port_name]
            addresses = [*subset.get("addresses", []), *subset.get("notReadyAddresses", [])]
            for port, address in itertools.product(ports, addresses):
                labels = {
                    "namespace": namespace,
                    "service": service,
                    "job": service,
                    "endpoint": port_name,
                }
                target = address.get("targetRef") or {}
                if target.get("kind") == "Pod":
                    labels["pod"] = target["name"]
                groups.append({"targets": [f"{address['ip']}:{port}"], "labels": labels})
    return sorted(groups, key=lambda group: group["targets"])


def render(
    prometheuses: list[dict],
    monitors: list[dict],
    namespaces: list[dict],
    services: list[dict],
    endpoints: list[dict],
    alertmanager: str,
) -> dict:
    """The Prometheus configuration the first Prometheus object's selection makes."""
    config: dict = {
        "global": {"scrape_interval": "30s", "evaluation_interval": "30s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [],
    }
    if not prometheuses:
        return config
    prometheus = min(
        prometheuses, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])
    )
    spec = prometheus.get("spec") or {}
    if spec.get("scrapeInterval"):
        config["global"]["scrape_interval"] = spec["scrapeInterval"]
    ns_labels = namespace_labels(namespaces)
    ns_selector = spec.get("serviceMonitorNamespaceSelector")
    monitor_selector = spec.get("serviceMonitorSelector")
    for monitor in sorted(
        monitors, key=lambda m: (m["metadata"]["namespace"], m["metadata"]["name"])
    ):
        namespace = monitor["metadata"]["namespace"]
        if ns_selector is None:
            taken = namespace == prometheus["metadata"]["namespace"]
        else:
            taken = selects(ns_selector, ns_labels.get(namespace, {}))
        # A missing serviceMonitorSelector takes no ServiceMonitor; an empty one takes all.
        taken = taken and monitor_selector is not None
        if taken and selects(monitor_selector, monitor["metadata"].get("labels") or {}):
            config["scrape_configs"].extend(scrape_jobs(monitor, services, endpoints))
    return config


def _reload(url: str) -> None:
    request = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def _wait_ready(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="the node's work dir (pki/)")
    parser.add_argument("--api", required=True, help="API server URL")
    parser.add_argument("--data", type=Path, required=True, help="a dir for configs and data")
    parser.add_argument("--prometheus-port", type=int, required=True)
    parser.add_argument("--alertmanager-port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()

    items = lister(args.work_dir, args.api)
    args.data.mkdir(parents=True, exist_ok=True)
    alertmanager_address = f"127.0.0.1:{args.alertmanager_port}"
    prometheus_url = f"http://127.0.0.1:{args.prometheus_port}"
    am_config = args.data / "alertmanager.yml"
    am_config.write_text(
        json.dumps({"route": {"receiver": "nobody"}, "receivers": [{"name": "nobody"}]})
    )
    config_path = args.data / "prometheus.yml"
    current = render([], [], [], [], [], alertmanager_address)
    config_path.write_text(json.dumps(current, indent=1))
    children = [
        subprocess.Popen(
            [
                "prometheus-alertmanager",
                f"--config.file={am_config}",
                f"--storage.path={args.data / 'alertmanager'}",
                f"--web.listen-address={alertmanager_address}",
                "--cluster.listen-address=",
            ]
        ),
        subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config_path}",
                f"--storage.tsdb.path={args.data / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{args.prometheus_port}",
                "--web.enable-lifecycle",
            ]
        ),
    ]

    def stop(*_: object) -> None:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _wait_ready(f"{prometheus_url}/-/ready", 60)
    print(f"prometheus-operator: Prometheus ready at {prometheus_url}", file=sys.stderr, flush=True)
    while True:
        if any(child.poll() is not None for child in children):
            print("prometheus-operator: Prometheus or Alertmanager ended", file=sys.stderr)
            stop()
        try:
            config = render(
                items(f"{GROUP}/prometheuses"),
                items(f"{GROUP}/servicemonitors"),
                items("/api/v1/namespaces"),
                items("/api/v1/services"),
                items("/api/v1/endpoints"),
                alertmanager_address,
            )
            if config != current:
                config_path.write_text(json.dumps(config, indent=1))
                _reload(f"{prometheus_url}/-/reload")
                jobs = [job["job_name"] for job in config["scrape_configs"]]
                print(f"prometheus-operator: {len(jobs)} jobs: {' '.join(jobs)}", file=sys.stderr)
                current = config
        except OSError as error:  # the API server or Prometheus not answering: try again
            print(f"prometheus-operator: {error}", file=sys.stderr, flush=True)
        sys.stderr.flush()
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
