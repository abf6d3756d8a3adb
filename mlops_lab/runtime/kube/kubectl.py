"""kubectl as the Kubernetes runtimes and the Kubernetes labs use it: one kubeconfig, one namespace.

Everything goes through the kubectl binary, not a client library: what the runtime runs is what a
learner can copy into a terminal, and the error messages are kubectl's own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_lab.runtime.kube.assets import MONITORING_NAMESPACE, NAMESPACE
from platform_core.errors import PlatformError

__all__ = ["MONITORING_NAMESPACE", "NAMESPACE", "Kubectl", "KubectlError"]


class KubectlError(PlatformError):
    pass


@dataclass(frozen=True)
class Kubectl:
    kubeconfig: Path | None
    namespace: str = NAMESPACE
    binary: str = "kubectl"

    def argv(self, *args: str, namespace: str | None = None) -> list[str]:
        head = [self.binary]
        if self.kubeconfig is not None:
            head += ["--kubeconfig", str(self.kubeconfig)]
        return [*head, "--namespace", namespace or self.namespace, *args]

    def run(
        self,
        *args: str,
        namespace: str | None = None,
        input_text: str | None = None,
        timeout_s: float = 120.0,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(*args, namespace=namespace)
        if shutil.which(self.binary) is None:
            raise KubectlError(
                "kubectl is not installed.",
                hint="Install it: https://kubernetes.io/docs/tasks/tools/ (Debian: the "
                "`kubernetes-client` package).",
            )
        try:
            result = subprocess.run(
                argv,
                # Never a prompt (kubectl asks for a user name when a kubeconfig has none).
                input=input_text if input_text is not None else "",
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise KubectlError(
                f"`kubectl {' '.join(args)}` did not finish within {timeout_s:.0f}s.",
                hint="Is the cluster reachable? `kubectl cluster-info`.",
            ) from error
        if check and result.returncode != 0:
            raise KubectlError(
                f"`kubectl {' '.join(args)}` failed: {result.stderr.strip()[-800:]}",
                hint="`mlops-lab status` shows whether the cluster and the platform run.",
            )
        return result

    def get(self, kind: str, name: str | None = None, **options: Any) -> dict[str, Any]:
        """`kubectl get -o json`: one object, or a List with ``items``."""
        args = ["get", kind] + ([name] if name else []) + ["-o", "json"]
        selector = options.pop("selector", None)
        if selector:
            args += ["-l", selector]
        return json.loads(self.run(*args, **options).stdout)

    def items(self, kind: str, selector: str | None = None, **options: Any) -> list[dict]:
        return self.get(kind, selector=selector, **options).get("items", [])

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        result = self.run("get", kind, name, "-o", "name", namespace=namespace, check=False)
        return result.returncode == 0

    def namespace_terminating(self) -> bool:
        result = self.run(
            "get", "namespace", self.namespace, "-o", "jsonpath={.status.phase}", check=False
        )
        return result.returncode == 0 and result.stdout.strip() == "Terminating"

    def await_namespace_deleted(self, timeout_s: float = 300.0) -> bool:
        """Wait until this namespace, if it is being deleted, is gone: nothing can be created in
        a Terminating namespace (a `clean` that did not wait leaves one for a minute or two).
        Returns whether it had to wait."""
        if not self.namespace_terminating():
            return False
        self.run(
            "wait",
            "--for=delete",
            f"namespace/{self.namespace}",
            f"--timeout={timeout_s:.0f}s",
            timeout_s=timeout_s + 10,
        )
        return True

    def patch(
        self, kind: str, name: str, patch: dict | list, patch_type: str = "strategic"
    ) -> None:
        self.run("patch", kind, name, "--type", patch_type, "--patch", json.dumps(patch))

    def create(self, manifest: dict) -> str:
        """Create an object that must not exist yet. Unlike ``apply``, no copy of the manifest is
        kept in a last-applied annotation: a Secret's values stay in its data only."""
        return self.run("create", "-f", "-", input_text=json.dumps(manifest)).stdout

    def apply(self, manifest: dict | Sequence[dict]) -> str:
        documents = manifest if isinstance(manifest, Sequence) else [manifest]
        body = {"apiVersion": "v1", "kind": "List", "items": list(documents)}
        return self.run("apply", "-f", "-", input_text=json.dumps(body)).stdout

    def reachable(self, timeout_s: float = 10.0) -> tuple[bool, str]:
        """Does an API server answer with this kubeconfig? (and which version, or why not)"""
        try:
            result = self.run(
                "get",
                "--raw",
                "/version",
                f"--request-timeout={timeout_s:.0f}s",
                timeout_s=timeout_s + 5,
                check=False,
            )
        except KubectlError as error:
            return False, error.message
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines()
            return False, lines[-1] if lines else "no answer"
        version = json.loads(result.stdout).get("gitVersion", "?")
        return True, f"Kubernetes {version} answers"

    def events(self, involved: str | None = None) -> list[dict]:
        """The namespace's events, oldest first (optionally of one object, by name)."""
        items = self.items("events")
        if involved:
            items = [e for e in items if e.get("involvedObject", {}).get("name", "") == involved]
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
