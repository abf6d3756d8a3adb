"""lab.toml is checked against a schema when the catalog loads it: a bad value is refused with a
message naming the file, the field and what is allowed; every real lab loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_lab.lab_engine.catalog import LABS_DIR, all_labs, find
from mlops_lab.lab_engine.kit import SEED, VARIANT, variant_of
from platform_core.errors import PlatformError

GOOD = """\
title = "A lab"
runtime = "any"
difficulty = "easy"
minutes = 10
teaches = "Something."
spoilers = ["answer"]

[page]
alert = "SomeAlert"
summary = "Something broke."
look = "Prometheus"
complaint = "It is broken."
"""


def _labs_dir(tmp_path: Path, manifest: str) -> Path:
    folder = tmp_path / "99-temp"
    folder.mkdir()
    (folder / "lab.toml").write_text(manifest)
    return tmp_path


def _refusal(tmp_path: Path, manifest: str) -> str:
    with pytest.raises(PlatformError) as raised:
        all_labs(_labs_dir(tmp_path, manifest))
    return str(raised.value)


def test_a_valid_manifest_loads_with_its_defaults(tmp_path: Path) -> None:
    lab = find("99", _labs_dir(tmp_path, GOOD))
    assert (lab.name, lab.runtime, lab.difficulty, lab.minutes) == ("99-temp", "any", "easy", 10)
    assert lab.traffic is True
    assert lab.spoilers == ("answer",)
    assert lab.page["alert"] == "SomeAlert"


@pytest.mark.parametrize(
    ("line", "bad_line", "field", "allowed"),
    [
        ('runtime = "any"', 'runtime = "k8s"', "runtime", "'local', 'kind' or 'any'"),
        (
            'difficulty = "easy"',
            'difficulty = "brutal"',
            "difficulty",
            "'easy', 'medium' or 'hard'",
        ),
    ],
    ids=["runtime", "difficulty"],
)
def test_an_unknown_value_is_refused_naming_the_file_the_field_and_the_allowed_values(
    tmp_path: Path, line: str, bad_line: str, field: str, allowed: str
) -> None:
    message = _refusal(tmp_path, GOOD.replace(line, bad_line))
    assert "99-temp/lab.toml" in message
    assert f"`{field}`" in message
    assert allowed in message
    assert bad_line.split(" = ")[1].replace('"', "'") in message


def test_a_missing_page_line_or_a_misspelt_key_is_refused(tmp_path: Path) -> None:
    manifest = GOOD.replace('look = "Prometheus"\n', "").replace("minutes", "minuets")
    message = _refusal(tmp_path, manifest)
    assert "`page.look`: Field required" in message
    assert "`minuets`" in message


def test_every_lab_in_the_repository_loads() -> None:
    labs = all_labs()
    folders = sorted(p.parent.name for p in LABS_DIR.glob("*/lab.toml"))
    assert [lab.name for lab in labs] == folders


def test_a_manifest_must_declare_its_spoilers(tmp_path: Path) -> None:
    message = _refusal(tmp_path, GOOD.replace('spoilers = ["answer"]', "spoilers = []"))
    assert "`spoilers`" in message
    (tmp_path / "none").mkdir()
    message = _refusal(tmp_path / "none", GOOD.replace('spoilers = ["answer"]\n', ""))
    assert "`spoilers`: Field required" in message


def test_a_lab_is_found_by_the_folder_name_it_had_before_a_rename() -> None:
    for lab in all_labs():
        for former in lab.former_names:
            assert former[:2] == lab.id and former != lab.name
            assert find(former) == lab


def test_seeds_draw_each_variant_in_turn_and_a_lab_without_variants_has_one(
    tmp_path: Path,
) -> None:
    varied = find("19")
    count = len(varied.variants)
    assert count >= 3
    drawn = [varied.variant(seed) for seed in range(2 * count)]
    assert [number for number, _ in drawn] == [*range(1, count + 1)] * 2
    assert [parameters for _, parameters in drawn[:count]] == [dict(v) for v in varied.variants]
    plain = find("99", _labs_dir(tmp_path, GOOD))
    (plain.folder / "lab.py").write_text("def start(ctx):\n    return {}\n")
    assert plain.variants == ({},)
    assert plain.variant(12345) == (1, {})


VARIED = [lab for lab in all_labs() if len(lab.variants) > 1]


@pytest.mark.parametrize("lab", VARIED, ids=lambda lab: lab.id)
def test_a_lab_reads_its_variant_from_the_number_its_state_records(lab) -> None:
    # What the engine records of a start: the seed and the number, no parameter.
    for seed in range(len(lab.variants)):
        number, parameters = lab.variant(seed)
        assert variant_of(lab.module.VARIANTS, {SEED: seed, VARIANT: number}) == parameters


@pytest.mark.parametrize("lab", VARIED, ids=lambda lab: lab.id)
def test_a_state_an_earlier_release_recorded_still_gives_its_variant(lab) -> None:
    first, *others = lab.variants
    # Copies of parameters beside the number (as earlier releases recorded) are not read.
    for number, parameters in enumerate(others, start=2):
        stale = {**first, SEED: number - 1, VARIANT: number}
        assert variant_of(lab.module.VARIANTS, stale) == parameters
    # Started before the lab had variants: no number, and it was the first.
    assert variant_of(lab.module.VARIANTS, {"started_at": 1.0}) == first


@pytest.mark.parametrize("lab", VARIED, ids=lambda lab: lab.id)
def test_each_variants_debrief_tells_that_variant(lab) -> None:
    for variant in lab.variants:
        text = lab.debrief_text(dict(variant))
        assert "{{" not in text and "}}" not in text
        assert all(str(value) in text for value in variant.values()), variant
    # Before a start (and for the question bank): the first variant's.
    assert lab.debrief_text() == lab.debrief_text(dict(lab.variants[0]))
