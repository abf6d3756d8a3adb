"""supervisord.conf as supervisord itself reads it: every value comes back whole, and no value can
add a line (a section) of its own."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from mlops_lab.runtime.local import supervisor
from mlops_lab.runtime.local.runtime import LocalRuntime
from mlops_lab.runtime.local.supervisor_config import (
    ProgramSection,
    UnwritableValue,
    conf_text,
    recorded_settings,
    split_secrets,
)
from platform_core.paths import DataPaths
from platform_core.settings import SERVICE_VARIABLE, Settings

HOSTS = {"mlflow": "mlflow", "prefect": "prefect"}


def supervisord_reads(path: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each program's argv and environment, parsed by supervisord's own config reader."""
    options = ServerOptions()
    options.configfile = str(path)
    section = options.read_config(str(path))
    return {
        process.name: (shlex.split(process.command), process.environment)
        for group in section.process_group_configs
        for process in group.process_configs
    }


def written(paths: DataPaths, text: str) -> Path:
    path = supervisor.conf_path(paths)
    path.write_text(text)
    return path


@pytest.fixture
def paths(unstarted_settings: Settings) -> DataPaths:
    unstarted_settings.paths.ensure()
    return unstarted_settings.paths


def test_quotes_spaces_and_comment_markers_reach_the_program_whole(paths: DataPaths) -> None:
    env = {
        "MLOPS_LAB_SERVICE_HOSTS": json.dumps(HOSTS),
        "SPACED": "a b, c=d",
        "MARKERS": "a;b#c",
        "PERCENT": "100% of %(here)s",
        "APOSTROPHE": "it's",
        "EMPTY": "",
    }
    argv = ["/bin/echo", "--note", "a ;b #c", "it's", '{"k": "v"}', "50%"]
    programs = [ProgramSection("echo", argv, env), ProgramSection("other", ["/bin/true"], {})]

    read = supervisord_reads(written(paths, conf_text(paths, programs, {}, {})))

    assert set(read) == {"echo", "other"}
    assert read["echo"] == (argv, env)
    assert read["other"] == (["/bin/true"], {})


def test_the_platforms_config_with_service_hosts_is_read_back_exactly(
    unstarted_settings: Settings,
) -> None:
    settings = unstarted_settings.model_copy(update={"service_hosts": HOSTS})
    settings.paths.ensure()
    runtime = LocalRuntime(settings)
    config = runtime.plan().config

    read = supervisord_reads(written(settings.paths, config))

    expected = {
        service.name: {**split_secrets(service.env(settings))[0], SERVICE_VARIABLE: service.name}
        for service in runtime.services
    }
    assert {name: env for name, (_argv, env) in read.items()} == expected
    assert recorded_settings(config)["MLOPS_LAB_SERVICE_HOSTS"] == json.dumps(HOSTS)


@pytest.mark.parametrize(
    ("env", "recorded"),
    [
        ({}, {"MLOPS_LAB_MODEL_NAME": "loan\n[program:injected]\ncommand=/bin/sh"}),
        ({"MODEL": "loan\r[program:injected]"}, {}),
    ],
)
def test_a_value_with_a_line_break_cannot_add_a_section(
    paths: DataPaths, env: dict[str, str], recorded: dict[str, str]
) -> None:
    program = ProgramSection("echo", ["/bin/echo"], env)
    with pytest.raises(UnwritableValue, match="control character"):
        conf_text(paths, [program], recorded, {})


@pytest.mark.parametrize("value", ["both ' and \"", '"quoted"', "ends with '", "a ;comment"])
def test_a_value_supervisord_cannot_carry_is_refused_naming_it(
    paths: DataPaths, value: str
) -> None:
    program = ProgramSection("echo", ["/bin/echo"], {"AWKWARD": value})
    with pytest.raises(UnwritableValue, match=r"AWKWARD \(environment of echo\)"):
        conf_text(paths, [program], {}, {})
