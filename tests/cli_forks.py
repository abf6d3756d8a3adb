"""`mlops-lab` for the tests, forked from a process that has imported it already.

A CLI call is two to three seconds of a core in imports (MLflow, Prefect, pandas, scikit-learn)
before the command does anything, and the suite makes hundreds of them on two cores: in CI they
were the largest consumer of CPU (924 s of 3,855). This module keeps one process per test process
that has imported the CLI and what its commands import, and forks it for each call. The fork
is the command as a user runs it from its entry point on: its own process, arguments,
environment, working directory, standard streams and exit code, its atexit handlers run at the
end. What it cannot show is a command that breaks at import in a fresh interpreter: the tests
that start the CLI as a subprocess (``subprocess.run([CLI, ...])``) and CI's newcomer's first
run still do that.

``MLOPS_LAB_TEST_CLI_FORKS=0`` runs every call as a subprocess instead.

The server is this module run as a script: ``python -m tests.cli_forks FD`` with a Unix socket
on FD. Each request is one message: JSON (arguments, environment, working directory) and four
descriptors (stdin, stdout, stderr, a pipe for the exit code). The reply is the child's PID.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "mlops-lab")
ENABLED = os.environ.get("MLOPS_LAB_TEST_CLI_FORKS", "1") != "0"
# The same for every call (tests.support.env_for): read by consoles created at import.
CONSTANT_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
_MESSAGE = 1 << 20


# ---- the client, in the test process -----------------------------------------------------------


class ForkServer:
    """One server process; calls from several threads at once are fine."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        from platform_core import telemetry

        env = {**os.environ, **telemetry.OFF, **CONSTANT_ENV}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.cli_forks", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.socket = ours
        self.lock = threading.Lock()
        ready = self.socket.recv(_MESSAGE)
        if ready != b"ready":
            raise RuntimeError(f"the CLI fork server did not start: {ready!r}")

    def run(
        self, args: Sequence[str], env: Mapping[str, str], stdin: str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        command = [CLI, *args]
        request = json.dumps({"argv": command, "env": dict(env), "cwd": os.getcwd()}).encode()
        with (
            tempfile.TemporaryFile() as given,
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
        ):
            given.write(stdin.encode())
            given.seek(0)
            status_read, status_write = os.pipe()
            try:
                with self.lock:
                    descriptors = [given.fileno(), out.fileno(), err.fileno(), status_write]
                    try:
                        socket.send_fds(self.socket, [request], descriptors)
                    finally:
                        # Sent, the server holds its own copy: only the child may keep it open.
                        os.close(status_write)
                    reply = self.socket.recv(_MESSAGE)
                if not reply.isdigit():
                    raise RuntimeError(f"the CLI fork server could not fork: {reply!r}")
                code = _exit_code(status_read, int(reply), timeout)
            finally:
                os.close(status_read)

            def text(file) -> str:
                file.seek(0)
                return file.read().decode(errors="replace")

            if code is None:
                raise subprocess.TimeoutExpired(command, timeout, text(out), text(err))
            return subprocess.CompletedProcess(command, code, text(out), text(err))

    def close(self) -> None:
        self.socket.close()  # the server exits when its socket closes
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _exit_code(status: int, pid: int, timeout: float) -> int | None:
    """The child's exit code from its status pipe; None (and the child killed) after
    ``timeout``. A child killed by a signal closes the pipe without a code: -1."""
    deadline = time.monotonic() + timeout
    said = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return None
        ready, _, _ = select.select([status], [], [], left)
        if not ready:
            continue
        chunk = os.read(status, 64)
        if not chunk:
            return int(said) if said.strip() else -1
        said += chunk


_server: ForkServer | None = None
_server_lock = threading.Lock()


def run(
    args: Sequence[str], env: Mapping[str, str], stdin: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """`mlops-lab ARGS` with ``env``, ``stdin`` and ``timeout``, as subprocess.run would."""
    global _server
    if not ENABLED or any(env.get(k) != v for k, v in CONSTANT_ENV.items()):
        return subprocess.run(
            [CLI, *args],
            env=dict(env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    with _server_lock:
        if _server is None or _server.process.poll() is not None:
            _server = ForkServer()
            atexit.register(_server.close)
        server = _server
    return server.run(args, env, stdin, timeout)


# ---- the server ---------------------------------------------------------------------------------


def _warm() -> None:
    """Import what the commands import: the CLI, every lab, the clients and their data stack.
    Nothing here may start a thread (a fork keeps only the forking one) or read a platform's
    settings (each call has its own)."""
    import mlflow.sklearn
    import mlflow.tracking  # noqa: F401
    import pandas  # noqa: F401
    import prefect.client.orchestration
    import prefect.deployments  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sqlalchemy  # noqa: F401

    import mlops_lab.cli.main
    import mlops_lab.lab_engine.engine
    import mlops_lab.lab_engine.golden  # noqa: F401
    from mlops_lab.lab_engine.catalog import all_labs

    for lab in all_labs():
        _ = lab.module
    # The TLS contexts every command's first HTTP call builds (about 20 ms of CPU each, from the CA
    # bundle): built here once for every command that reads the same bundle as this process.
    import certifi

    from platform_core import http_calls

    http_calls.tls_context()
    http_calls._tls_context_of(certifi.where())  # pyright: ignore[reportPrivateUsage]
    if threading.active_count() != 1:
        raise RuntimeError(f"importing the CLI started threads: {threading.enumerate()}")


# What the warmed TLS contexts were built from: a command whose environment names another CA
# bundle builds its own.
_TLS_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PREFECT_API_SSL_CERT_FILE")


def _forget_tls_contexts() -> None:
    from platform_core import http_calls

    http_calls.tls_context.cache_clear()
    http_calls._tls_context_of.cache_clear()  # pyright: ignore[reportPrivateUsage]


def _child(request: dict, descriptors: list[int]) -> None:
    """In the forked child: become the command, run it, report its exit code. Never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    given, out, err, status = descriptors
    for source, target in ((given, 0), (out, 1), (err, 2)):
        os.dup2(source, target)
        os.close(source)
    os.set_inheritable(status, False)
    bundle = {name: os.environ.get(name) for name in _TLS_ENV}
    os.environ.clear()
    os.environ.update(request["env"])
    if bundle != {name: os.environ.get(name) for name in _TLS_ENV}:
        _forget_tls_contexts()
    os.chdir(request["cwd"])
    sys.argv = request["argv"]
    # The command's entry point is a script, not this module run with -m: click names the
    # program from how __main__ was started.
    main = sys.modules["__main__"]
    main.__package__, main.__spec__ = None, None
    # What Prefect read from the environment when the server imported it, read again from this
    # command's, as a fresh interpreter importing it now would.
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()
    code = 0
    try:
        from mlops_lab.cli.main import run

        returned = run()  # the entry point exits with what it returns
        code = returned if isinstance(returned, int) else 0
    except SystemExit as exit_:
        if exit_.code is None:
            code = 0
        elif isinstance(exit_.code, int):
            code = exit_.code
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        # What the interpreter does at exit: wait for threads, run atexit, flush.
        try:
            threading._shutdown()  # pyright: ignore[reportAttributeAccessIssue]
            atexit._run_exitfuncs()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os.write(status, str(code).encode())
            os._exit(code)


def serve(fd: int) -> None:
    channel = socket.socket(fileno=fd)
    try:
        _warm()
    except BaseException as error:
        channel.send(f"warming failed: {error!r}".encode())
        raise
    # Children are reaped by the kernel; each resets this before it runs its command.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    channel.send(b"ready")
    while True:
        try:
            message, descriptors, _flags, _address = socket.recv_fds(channel, _MESSAGE, 4)
        except OSError:
            return
        if not message:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as error:
            for fd_ in descriptors:
                os.close(fd_)
            channel.send(f"fork failed: {error}".encode())
            continue
        if pid == 0:
            try:
                channel.close()
                _child(json.loads(message), descriptors)
            finally:
                os._exit(1)  # whatever failed before the command ran, never back in this loop
        for fd_ in descriptors:
            os.close(fd_)
        channel.send(str(pid).encode())


if __name__ == "__main__":
    serve(int(sys.argv[1]))
