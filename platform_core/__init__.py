"""The floor every part of the platform stands on: settings, errors, the model contract, the
prediction-log table and the HTTP probe. It imports no component (pipelines, serving, monitoring)
and nothing above them (runtimes, labs, CLI); `make lint` enforces that with import-linter."""
