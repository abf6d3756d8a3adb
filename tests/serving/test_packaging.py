"""The build files for the kind runtime agree with the settings, the code and uv.lock.

Docker is not needed: these are static checks of what `docker build` and `bentoml build` read.
"""

from __future__ import annotations

import re
import tomllib

import yaml

from mlops_lab.core.settings import REPO_ROOT, Settings
from mlops_lab.runtime.catalog import by_name
from serving.__main__ import SERVICE

SERVING = REPO_ROOT / "serving"
DEFAULT_PORT = Settings.model_fields["serving_port"].default


def _bentofile() -> dict:
    return yaml.safe_load((SERVING / "bentofile.yaml").read_text())


def _dockerfile() -> str:
    return (SERVING / "Dockerfile").read_text()


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
        name, version = re.fullmatch(r"([a-z0-9-]+)(?:\[[a-z,]+\])?==(.+)", requirement).groups()
        assert locked.get(name) == version, f"{requirement}: uv.lock has {locked.get(name)}"


def test_dockerfile_port_is_the_settings_serving_port() -> None:
    assert f"ARG SERVING_PORT={DEFAULT_PORT}\n" in _dockerfile()
    assert "EXPOSE ${SERVING_PORT}" in _dockerfile()
    assert "MLOPS_LAB_SERVING_PORT=${SERVING_PORT}" in _dockerfile()


def test_dockerfile_installs_from_the_lock_and_starts_the_settings_driven_entry_point() -> None:
    dockerfile = _dockerfile()
    assert "uv sync --frozen --no-dev" in dockerfile
    assert 'CMD ["python", "-m", "serving"]' in dockerfile
    assert "USER 10001" in dockerfile


def test_dockerfile_copies_every_package_the_project_builds() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    for package in packages:
        assert f"COPY {package} ./{package}\n" in _dockerfile()


def test_local_runtime_probes_liveness_and_scrapes_metrics() -> None:
    service = by_name("serving")
    assert service.health_path == "/livez"
    assert service.metrics_path == "/metrics"
    assert service.port_setting == "serving_port"
