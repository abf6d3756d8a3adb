"""The venv that scripts/bootstrap.sh makes holds compiled bytecode for what the services import.

Python run with PYTHONDONTWRITEBYTECODE (this project's CI sets it, as some shells do) never writes
.pyc files, so every service, CLI call and flow run compiled MLflow, Prefect, scikit-learn and
pandas from source: about 3 s of CPU more per process (`make bench`: `up` after `down` 22.8 s on
a fresh clone, 10.2 s once compiled). Bootstrap compiles them once, at install.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest


@pytest.mark.parametrize("module", ["mlflow", "prefect", "sklearn", "pandas", "bentoml"])
def test_heavy_packages_are_byte_compiled(module: str) -> None:
    source = importlib.import_module(module).__file__
    assert source is not None
    compiled = Path(importlib.util.cache_from_source(source))
    assert compiled.exists(), (
        f"{compiled} is missing: the venv was not byte-compiled "
        "(scripts/bootstrap.sh runs `uv sync --compile-bytecode`)"
    )
