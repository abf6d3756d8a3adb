"""Values that must live in one place do: a second copy is a disagreement waiting to happen."""

from __future__ import annotations

from platform_core.settings import REPO_ROOT

PACKAGES = ("platform_core", "mlops_lab", "pipelines", "serving", "monitoring")


def _sources():
    for package in PACKAGES:
        yield from (REPO_ROOT / package).rglob("*.py")


def test_mlflow_client_patience_is_set_only_in_its_table() -> None:
    home = REPO_ROOT / "platform_core" / "mlflow_client.py"
    assert "MLFLOW_HTTP_REQUEST_" in home.read_text(), f"{home} no longer holds the table"
    elsewhere = [
        str(path.relative_to(REPO_ROOT))
        for path in _sources()
        if path != home and "MLFLOW_HTTP_REQUEST_" in path.read_text()
    ]
    assert not elsewhere, f"MLflow client retries or timeouts set outside {home.name}: {elsewhere}"
