"""In-process Prefect clients in tests talk to the platform under test, whenever Prefect was
first imported. Prefect reads its settings from the environment once, when it is imported: a
worker that imported it before (another area's test) ignored the URL set later, and
`run_deployment` went to a temporary server of its own instead (a lab test timed out on it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from platform_core.settings import REPO_ROOT


def test_prefect_imported_first_still_talks_to_the_platform() -> None:
    script = textwrap.dedent(
        """
        import prefect.settings  # first, as another test's import would be
        from tests.support import make_settings, platform_environment, remove_platform_files

        settings = make_settings()
        try:
            with platform_environment(settings):
                url = str(prefect.settings.get_current_settings().api.url)
            assert url == settings.prefect_api_url, (url, settings.prefect_api_url)
            print("ok")
        finally:
            remove_platform_files(settings)
        """
    )
    env_free = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env_free,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
