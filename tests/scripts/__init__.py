"""Tests of the scripts under scripts/, loaded from their files as they run."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from platform_core.settings import REPO_ROOT


def ci_script(name: str) -> ModuleType:
    """scripts/ci/<name>.py as a module, with its folder first on the import path as when it
    runs (for kube_api.py beside it)."""
    folder = REPO_ROOT / "scripts/ci"
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
