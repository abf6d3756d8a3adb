"""Cluster DNS records for the CI node: a hosts file for dnsmasq, kept in sync with the Services.

The node built from Debian's archive has no CoreDNS image, yet the platform's pods address each
other by Service name (``http://mlflow:5000``) exactly as on kind. So scripts/ci/k8s-up.sh runs
dnsmasq on the node's bridge address (the kubelet's ``--cluster-dns``) and this loop: every second
it lists Services and Endpoints from the API server and rewrites the hosts file in the names
CoreDNS would answer (``<service>.<namespace>.svc.cluster.local``; pods' search domains make
``mlflow`` resolve), then tells dnsmasq to reread it (SIGHUP). Headless Services get their ready
endpoints' addresses, and ``<hostname>.<service>...`` records for StatefulSet pods.

Standard library only: it runs with the system's python3, before and apart from the project's venv.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path


def records(services: list[dict], endpoints: list[dict], domain: str) -> list[str]:
    """Hosts-file lines (``IP NAME``) for every Service, sorted: same Services, same text."""
    ready: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for ep in endpoints:
        key = (ep["metadata"]["namespace"], ep["metadata"]["name"])
        for subset in ep.get("subsets") or []:
            for address in subset.get("addresses") or []:
                ready.setdefault(key, []).append((address["ip"], address.get("hostname", "")))
    lines = set()
    for svc in services:
        namespace, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        fqdn = f"{name}.{namespace}.svc.{domain}"
        cluster_ip = svc["spec"].get("clusterIP", "None")
        if cluster_ip not in ("", "None"):
            lines.add(f"{cluster_ip} {fqdn}")
            continue
        for ip, hostname in ready.get((namespace, name), []):
            lines.add(f"{ip} {fqdn}")
            if hostname:
                lines.add(f"{ip} {hostname}.{fqdn}")
    return sorted(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="the node's work dir (pki/)")
    parser.add_argument("--api", required=True, help="API server URL")
    parser.add_argument("--hosts", type=Path, required=True, help="dnsmasq --addn-hosts file")
    parser.add_argument(
        "--dnsmasq-pid", type=Path, required=True, help="file holding dnsmasq's PID"
    )
    parser.add_argument("--domain", default="cluster.local")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()

    from kube_api import lister  # beside this script

    items = lister(args.work_dir, args.api)

    current = args.hosts.read_text() if args.hosts.exists() else None
    while True:
        try:
            text = (
                "\n".join(
                    records(items("/api/v1/services"), items("/api/v1/endpoints"), args.domain)
                )
                + "\n"
            )
        except OSError as error:  # the API server restarting or not up yet: keep the last records
            print(
                f"cluster-dns: cannot list Services from {args.api}: {error}",
                file=sys.stderr,
                flush=True,
            )
            text = current
        if text != current:
            tmp = args.hosts.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o644)
            os.replace(tmp, args.hosts)
            current = text
            try:
                os.kill(int(args.dnsmasq_pid.read_text()), signal.SIGHUP)
            except (OSError, ValueError) as error:
                print(f"cluster-dns: cannot signal dnsmasq: {error}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
