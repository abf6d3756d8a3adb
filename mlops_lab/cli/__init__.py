"""The ``mlops-lab`` command. Importing it switches MLflow's telemetry off for the CLI's process,
before any command module imports mlflow (platform_core.telemetry says why)."""

from platform_core import telemetry

telemetry.switch_off()
