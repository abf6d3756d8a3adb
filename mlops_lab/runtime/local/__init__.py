"""The local runtime: every service as a process on this machine, kept by supervisord."""
