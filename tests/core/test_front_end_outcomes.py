"""The front end's outcomes feed: by default each outcome goes to its own prediction; each other
join is the bug it names; the ledger keeps what became of each loan and where it went."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_lab.front_end import config as front_end_config
from mlops_lab.front_end.config import FrontEndConfig
from mlops_lab.front_end.outcomes import (
    AnsweredLog,
    Entry,
    Known,
    OutcomeJoin,
    append,
    attach,
    read,
)
from platform_core.errors import PlatformError

# Four answers a second apart (a, b, c, d); the outcomes of b, c and d became known 1.5 s later.
ANSWERED = AnsweredLog()
for at, request_id in enumerate("abcd"):
    ANSWERED.add(float(at), request_id)
BATCH = [Known("b", 1, "a", 2.5), Known("c", 0, "b", 3.5), Known("d", 1, "c", 4.5)]


def test_outcomes_go_to_their_own_predictions_by_default() -> None:
    assert FrontEndConfig().outcome_join == "request_id"
    assert attach("request_id", BATCH, ANSWERED) == ["b", "c", "d"]


@pytest.mark.parametrize(
    ("join", "reported_for"),
    [
        ("previous_request", ["a", "b", "c"]),
        ("reversed_batch", ["d", "c", "b"]),
        ("latest_request", ["c", "d", "d"]),
    ],
)
def test_each_wrong_join_reports_outcomes_for_the_predictions_it_names(
    join: OutcomeJoin, reported_for: list[str]
) -> None:
    assert attach(join, BATCH, ANSWERED) == reported_for


def test_an_unknown_join_in_the_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "front-end.yaml"
    path.write_text("outcome_join: by_name\n")

    with pytest.raises(PlatformError, match="outcome_join"):
        front_end_config.read(path)


def test_the_join_written_to_the_file_is_read_back(tmp_path: Path) -> None:
    path = tmp_path / "front-end.yaml"
    front_end_config.write(path, FrontEndConfig(outcome_join="previous_request"))

    assert front_end_config.read(path).outcome_join == "previous_request"


def test_the_ledger_reads_back_what_was_appended_and_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "front-end" / "outcomes.jsonl"
    append(path, [Entry("b", 1, 1_000.0, "a"), Entry("c", 0, 2_000.0, None)])
    with path.open("a") as handle:
        handle.write('{"request_id": "d", "outc')

    assert list(read(path)) == [Entry("b", 1, 1_000.0, "a"), Entry("c", 0, 2_000.0, None)]
    assert list(read(path, since=1_500.0)) == [Entry("c", 0, 2_000.0, None)]
