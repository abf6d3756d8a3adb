"""BentoML's build file agrees with the settings, the code and uv.lock.

Static checks of what `bentoml build` reads. The Kubernetes image (images/platform/Dockerfile)
and the manifests that start serving from it are checked in tests/k8s.
"""

from __future__ import annotations

import re
import tomllib

import yaml

from mlops_lab.runtime.services import by_name
from platform_core.settings import REPO_ROOT, Settings
from serving.__main__ import SERVICE

SERVING = REPO_ROOT / "serving"
DEFAULT_PORT = Settings.model_fields["serving_port"].default


def _bentofile() -> dict:
    return yaml.safe_load((SERVING / "bentofile.yaml").read_text())


def _locked_versions() -> dict[str, str]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"]}


def test_bentofile_serves_the_service_the_runtime_starts() -> None:
    assert _bentofile()["service"] == SERVICE


def test_bentofile_port_is_the_settings_serving_port() -> None:
    envs = {env["name"]: env["value"] for env in _bentofile()["envs"]}
    assert int(envs["BENTOML_PORT"]) == DEFAULT_PORT
    assert envs["MLOPS_LAB_HOST"] == "0.0.0.0"


def test_bentofile_pins_the_versions_in_uv_lock() -> None:
    locked = _locked_versions()
    for requirement in _bentofile()["python"]["packages"]:
        pinned = re.fullmatch(r"([a-z0-9-]+)(?:\[[a-z,]+\])?==(.+)", requirement)
        assert pinned, f"{requirement}: not pinned with =="
        name, version = pinned.groups()
        assert locked.get(name) == version, f"{requirement}: uv.lock has {locked.get(name)}"


def test_local_runtime_probes_liveness_and_scrapes_metrics() -> None:
    service = by_name("serving")
    assert service.health_path == "/livez"
    assert service.metrics_path == "/metrics"
    assert service.port_setting == "serving_port"
