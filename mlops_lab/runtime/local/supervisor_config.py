"""supervisord.conf for the local runtime: one ``[program:x]`` section per service, and the
settings it was rendered from as comments (so `up` can say what changed on a running platform).

supervisord reads the file with configparser and its own rules: ``;`` and ``#`` after whitespace
start a comment even inside a value, ``%(name)s`` is expanded everywhere, and ``environment=`` is
read by a non-POSIX shlex that knows no escapes. Every value goes through the helpers here, which
write it so that supervisord reads back exactly that value or refuse it before anything is written.
"""

from __future__ import annotations

import configparser
import hashlib
import io
import re
import shlex
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlops_lab.runtime.local.supervisor import pidfile, socket_path
from platform_core.errors import PlatformError
from platform_core.paths import DataPaths
from platform_core.settings import line_breaker

# Variables with these words in their names hold credentials (GF_SECURITY_ADMIN_PASSWORD, ...).
_SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN")
_RECORD_PREFIXES = ("; env ", "; secret ")
# supervisord reads its config with `;` and `#` as comment markers wherever whitespace precedes
# them, even inside a value.
_COMMENT_MARKER = re.compile(r"(?<=\s)[;#]")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTES = ('"', "'")


@dataclass(frozen=True)
class ProgramSection:
    """One ``[program:x]`` section."""

    name: str
    command: list[str]
    env: Mapping[str, str]
    priority: int = 100
    # False for on-demand services: supervisord knows them, but only a lab starts them.
    autostart: bool = True


class UnwritableValue(PlatformError):
    """A value supervisord.conf cannot carry as it is: nothing was written."""

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(
            f"{what} cannot go into supervisord.conf: {problem}.",
            hint="Nothing was written. Change the setting it comes from (a path: MLOPS_LAB_HOME).",
        )


def split_secrets(
    env: Mapping[str, str], secret_names: Collection[str] = ()
) -> tuple[dict[str, str], dict[str, str]]:
    """``(public, secret)``: secret when named in ``secret_names`` or when its name says so.

    Public variables may be written into the config; secret ones reach the programs only through
    supervisord's own environment, which every child inherits."""
    public, secret = {}, {}
    for key, value in env.items():
        hidden = key in secret_names or any(word in key.upper() for word in _SECRET_WORDS)
        (secret if hidden else public)[key] = value
    return public, secret


def secret_digest(value: str, salt: str) -> str:
    """Stands in for a credential in the config: it changes when the value does, and scrypt
    makes guessing a weak password from it slow."""
    return hashlib.scrypt(value.encode(), salt=salt.encode(), n=2**14, r=8, p=1, dklen=16).hex()


def conf_text(
    paths: DataPaths,
    programs: Iterable[ProgramSection],
    env: Mapping[str, str],
    secrets: Mapping[str, str],
) -> str:
    """The config file for these programs. ``env`` is recorded in it so changes show;
    ``secrets`` only as digests, so a changed password shows too without being written."""
    salt = str(paths.home)
    return (
        render_config(paths, programs)
        + "".join(_record("env", k, v) for k, v in sorted(env.items()))
        + "".join(
            _record("secret", k, f"scrypt:{secret_digest(v, salt)}")
            for k, v in sorted(secrets.items())
        )
    )


def render_config(paths: DataPaths, programs: Iterable[ProgramSection]) -> str:
    config = configparser.RawConfigParser()
    # Keep the case of keys. typeshed types optionxform as a method, not an attribute to set.
    config.optionxform = str  # pyright: ignore[reportAttributeAccessIssue]
    socket = _path("The supervisor socket", socket_path(paths))
    home = _path("The data dir", paths.home)
    config["unix_http_server"] = {"file": socket, "chmod": "0700"}
    config["supervisord"] = {
        "logfile": _path("The log", paths.log_file("supervisord")),
        "logfile_maxbytes": "5MB",
        "logfile_backups": "2",
        "pidfile": _path("The pid file", pidfile(paths)),
        "childlogdir": _path("The log dir", paths.logs),
        "directory": home,
        "nodaemon": "false",
        "silent": "true",
    }
    config["rpcinterface:supervisor"] = {
        "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"
    }
    config["supervisorctl"] = {"serverurl": f"unix://{socket}"}
    for program in programs:
        config[f"program:{program.name}"] = {
            "command": _command(program.name, program.command),
            "environment": _environment(program.name, program.env),
            "directory": home,
            "priority": str(program.priority),
            "autostart": "true" if program.autostart else "false",
            "autorestart": "true",
            # A process must stay up this long to count as started; crashes sooner are retried.
            "startsecs": "3",
            "startretries": "3",
            "stopsignal": "TERM",
            "stopwaitsecs": "20",
            # Kill the whole process group: MLflow and Prefect run their servers as children.
            "stopasgroup": "true",
            "killasgroup": "true",
            "redirect_stderr": "true",
            "stdout_logfile": _path("The log", paths.log_file(program.name)),
            "stdout_logfile_maxbytes": "10MB",
            "stdout_logfile_backups": "2",
        }
    buffer = io.StringIO()
    buffer.write("; Rendered by mlops-lab on every `up`: edit mlops_lab/runtime/services.py.\n")
    config.write(buffer)
    return buffer.getvalue()


def recorded_settings(text: str) -> dict[str, str]:
    """The ``; env`` and ``; secret`` lines of a config: variable -> value or digest."""
    recorded = {}
    for line in text.splitlines():
        for prefix in _RECORD_PREFIXES:
            if line.startswith(prefix):
                key, _, value = line.removeprefix(prefix).partition("=")
                recorded[key] = value
    return recorded


def _record(kind: str, key: str, value: str) -> str:
    """One ``; env`` or ``; secret`` line: a comment that ends where the line does."""
    if not _VARIABLE_NAME.fullmatch(key):
        raise UnwritableValue(f"The variable {key!r}", "it is not a variable name")
    return f"; {kind} {key}={_one_line(key, value)}\n"


def _command(program: str, argv: list[str]) -> str:
    # Whitespace before a `;` or `#` only ever stands inside one of shlex's single-quoted words:
    # closing and reopening the quotes there ('a '';b') keeps the word whole for supervisord's
    # shlex.split and moves the marker away from the whitespace.
    return _escape(f"The command of {program}", re.sub(r"(\s)(?=[;#])", r"\1''", shlex.join(argv)))


def _environment(program: str, env: Mapping[str, str]) -> str:
    """``environment=`` in supervisord's syntax: a non-POSIX shlex that knows no escapes reads it,
    so each value is quoted with a quote it does not hold, and supervisord strips every quote
    from both ends of a value."""
    pairs = []
    for key, value in sorted(env.items()):
        what = f"{key} (environment of {program})"
        if not _VARIABLE_NAME.fullmatch(key):
            raise UnwritableValue(what, "it is not a variable name")
        quote = next((q for q in _QUOTES if q not in value), None)
        if quote is None:
            raise UnwritableValue(what, "it holds both kinds of quote")
        if value.startswith(_QUOTES) or value.endswith(_QUOTES):
            raise UnwritableValue(what, "it begins or ends with a quote")
        pairs.append(f"{key}={quote}{_escape(what, value)}{quote}")
    return ",".join(pairs)


def _path(what: str, path: Path) -> str:
    text = str(path)
    if text != text.strip():  # configparser strips a value
        raise UnwritableValue(f"{what} {text!r}", "it begins or ends with whitespace")
    return _escape(f"{what} {text!r}", text)


def _escape(what: str, value: str) -> str:
    """``value`` as supervisord reads it back whole: one line, no comment marker in it, ``%``
    doubled (supervisord expands %(name)s)."""
    if _COMMENT_MARKER.search(_one_line(what, value)):
        raise UnwritableValue(what, "it holds a ';' or '#' after a space, the start of a comment")
    return value.replace("%", "%%")


def _one_line(what: str, value: str) -> str:
    """``value``, refused if it would end its line: what follows could be a section of its own."""
    char = line_breaker(value)
    if char is not None:
        raise UnwritableValue(what, f"it holds the control character U+{ord(char):04X}")
    return value
