"""Lists from the API server of CI's node, with the admin's certificates from its work dir.

For the node's loops (cluster_dns.py, network_policy.py, prometheus_operator.py), with what
two of them judge alike (label selectors, namespace labels): standard library only, run with the
system's python3, before and apart from the project's venv. Each imports it from this folder (a
script's own folder is first on its import path).
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable
from pathlib import Path

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def lister(work_dir: Path, api: str, timeout_s: float = 5.0) -> Callable[[str], list[dict]]:
    """A function from an API path (``/api/v1/pods``) to the items the API server lists there."""
    pki = work_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def items(path: str) -> list[dict]:
        with urllib.request.urlopen(f"{api}{path}", context=context, timeout=timeout_s) as answer:
            return json.load(answer)["items"]

    return items


def selects(selector: dict | None, labels: dict[str, str]) -> bool:
    """A LabelSelector against a label set; an empty selector selects everything."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False  # an operator the API would have refused: select nothing
    return True


def namespace_labels(namespaces: list[dict]) -> dict[str, dict[str, str]]:
    """Each namespace's labels, with the name label the API sets from Kubernetes 1.21."""
    return {
        ns["metadata"]["name"]: {
            **(ns["metadata"].get("labels") or {}),
            NAMESPACE_NAME_LABEL: ns["metadata"]["name"],
        }
        for ns in namespaces
    }
