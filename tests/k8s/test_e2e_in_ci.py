"""CI provisions a cluster and runs the end-to-end test inside `make test`: there a missing
cluster must fail the suite, not skip quietly, and the deploy and tests are timed in CI's record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from platform_core.settings import REPO_ROOT


def test_a_required_cluster_that_does_not_answer_fails_and_is_recorded(tmp_path: Path) -> None:
    timings = tmp_path / "timings"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "PYTEST_"))}
    env |= {
        "MLOPS_LAB_E2E_REQUIRED": "1",
        "MLOPS_LAB_CI_TIMINGS": str(timings),
        # kind is not on this PATH, so only KUBECONFIG could name a cluster, and it names none.
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "tests/k8s/test_cluster_e2e.py::test_logs_come_from_the_deployment",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout[-2000:]
    assert "MLOPS_LAB_E2E_REQUIRED=1 (CI provisioned a cluster), but no cluster" in result.stdout
    assert "kubernetes e2e (failed)" in timings.read_text()
