"""Who applies, as the front end's file, log and /status show it: `baseline` by name, any other
population by an opaque code, since a lab's learner reads them while the lab runs and a name
such as `concept_drift_age` would give away what labs 07, 08 and 11 ask them to find out."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from mlops_lab.front_end import config as front_end_config
from mlops_lab.front_end.config import FrontEndConfig, Population, population_code
from mlops_lab.lab_engine.catalog import find


def _names() -> list[str]:
    return [name for name in get_args(Population) if name != "baseline"]


def test_the_file_names_no_population_but_the_baseline_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "front-end.yaml"
    for population in get_args(Population):
        config = FrontEndConfig(population=population)
        front_end_config.write(path, config)
        text = path.read_text()
        hidden = [name for name in _names() if name in text]
        assert not hidden, f"{population}: the file says {hidden}"
        assert f"population: {population_code(population)}" in text
        assert front_end_config.read(path) == config
    assert population_code("baseline") == "baseline"
    assert len({population_code(name) for name in get_args(Population)}) == len(
        get_args(Population)
    )


def test_what_a_lab_sets_is_shown_as_a_code_in_the_status_too() -> None:
    for lab_id in ("07", "08"):
        for variant in find(lab_id).variants:
            shown = FrontEndConfig(population=variant["population"]).model_dump()
            assert shown["population"] == population_code(variant["population"])
            assert shown["population"] not in get_args(Population)


def test_a_file_naming_the_population_as_earlier_releases_wrote_it_still_reads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "front-end.yaml"
    path.write_text("population: new_segment_retired\nrate_per_s: 3\n")
    assert front_end_config.read(path).population == "new_segment_retired"
