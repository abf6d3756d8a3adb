"""`python -m serving`: start the serving API on the host and port the settings name.

The container image runs this, so its port comes from the same settings as the local runtime.
"""

from __future__ import annotations

import os

from mlops_lab.settings import get_settings
from serving import launch


def main() -> None:
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    argv = launch.command(settings)
    # Variables already set (by the image or the operator) win over the local defaults.
    os.execve(argv[0], argv, {**launch.env(settings), **os.environ})


if __name__ == "__main__":
    main()
