"""mlops-lab: an MLOps platform-in-a-box, its runtimes, labs and interview preparation."""

import os

# MLflow starts its telemetry client when it is imported, so this must run before any import of
# mlflow in the CLI's process (`mlops_lab` is imported first). Its thread sets and unsets a
# variable in os.environ while other threads iterate over it (a KeyError mid-run), and a
# platform on a closed network has nothing to send. Services get the same from Settings.to_env().
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
