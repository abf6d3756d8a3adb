"""mlops-lab: the platform's runtimes, the lab engine, interview practice and the CLI, standing on
the components (pipelines, serving, monitoring) and their floor (platform_core)."""
