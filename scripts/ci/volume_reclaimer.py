"""Reclaims the CI node's local volumes: a Released PersistentVolume is emptied and made Available.

kind's local-path provisioner deletes a volume's data with its claim, so deleting namespace
``mlops-lab`` (``mlops-lab clean``, the end-to-end test's teardown) leaves nothing behind and the
next deploy starts empty. The CI node has static local volumes instead (scripts/ci/k8s-up.sh:
``Retain``, since Kubernetes has no deleter for ``local`` volumes and recycles only hostPath ones
under /tmp). A Released volume would keep its old claim reference forever, so a second deploy on
one cluster would find fewer volumes, and a new claim never gets the old data back anyway. Every
few seconds this loop empties each Released volume whose path lies in the node's volumes dir and
removes its claim reference: the volume is Available again, like a fresh one.

Standard library only: it runs with the system's python3, apart from the project's venv.
"""

from __future__ import annotations

import argparse
import json
import shutil
import ssl
import sys
import time
import urllib.request
from pathlib import Path


def released(volumes: list[dict], root: Path) -> list[tuple[str, Path]]:
    """(name, directory) of each Released local volume inside ``root``; nothing else is touched."""
    found = []
    for pv in volumes:
        path = (pv["spec"].get("local") or {}).get("path")
        if pv.get("status", {}).get("phase") != "Released" or not path:
            continue
        directory = Path(path).resolve()
        if directory.parent == root.resolve():
            found.append((pv["metadata"]["name"], directory))
    return found


def empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    directory.chmod(0o777)  # as k8s-up.sh made it: any pod's uid may write there


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="the node's work dir (pki/)")
    parser.add_argument("--api", required=True, help="API server URL")
    parser.add_argument("--volumes", type=Path, required=True, help="the local volumes' dir")
    parser.add_argument("--interval", type=float, default=3.0)
    args = parser.parse_args()

    pki = args.work_dir / "pki"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))

    def request(path: str, patch: dict | None = None) -> dict:
        req = urllib.request.Request(f"{args.api}{path}")
        if patch is not None:
            req.method = "PATCH"
            req.data = json.dumps(patch).encode()
            req.add_header("Content-Type", "application/merge-patch+json")
        with urllib.request.urlopen(req, context=context, timeout=5) as response:
            return json.load(response)

    while True:
        try:
            for name, directory in released(
                request("/api/v1/persistentvolumes")["items"], args.volumes
            ):
                empty(directory)
                request(f"/api/v1/persistentvolumes/{name}", {"spec": {"claimRef": None}})
                print(f"volume-reclaimer: {name} emptied and Available", flush=True)
        except OSError as error:  # the API server restarting, or a file busy: next round
            print(f"volume-reclaimer: {error}", file=sys.stderr, flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
