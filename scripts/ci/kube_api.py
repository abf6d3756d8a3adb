"""Lists from the API server of CI's node, with the admin's certificates from its work dir.

For the node's loops (cluster_dns.py, network_policy.py): standard library only, run with the
system's python3, before and apart from the project's venv. Each imports it from this folder (a
script's own folder is first on its import path).
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Callable
from pathlib import Path


def lister(work_dir: Path, api: str, timeout_s: float = 5.0) -> Callable[[str], list[dict]]:
    """A function from an API path (``/api/v1/pods``) to the items the API server lists there."""
    pki = work_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def items(path: str) -> list[dict]:
        with urllib.request.urlopen(f"{api}{path}", context=context, timeout=timeout_s) as answer:
            return json.load(answer)["items"]

    return items
