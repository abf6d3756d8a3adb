"""The rollout's evidence split by a feature: a candidate as good overall but worse for one group
is found there, in a canary (independent records) and in shadow (paired), read back from a real
prediction log."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.metrics import roc_auc_score

from platform_core import prediction_log
from platform_core.errors import PlatformError
from platform_core.prediction_log import ROLE_CANARY, ROLE_CHAMPION, ROLE_SHADOW, predictions
from platform_core.rollout_segments import MISSING, Row, _rows, _shadow_pairs, split

HOMES = ("RENT", "OWN", "MORTGAGE")


def _records(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "home_ownership": str(rng.choice(HOMES)),
            "annual_income": float(rng.lognormal(10.8, 0.5)),
        }
        for _ in range(n)
    ]


def _scored(records: list[dict], seed: int, blind_for: str | None = None) -> list[Row]:
    """A model that ranks outcomes well, except for ``blind_for``, whose scores are noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for record in records:
        label = int(rng.random() < 0.3)
        informative = record["home_ownership"] != blind_for
        signal = 1.2 * label if informative else 0.0
        probability = float(1 / (1 + np.exp(-(signal + rng.normal() - 0.8))))
        rows.append((record, int(probability >= 0.5), probability, label))
    return rows


def test_a_canary_worse_for_one_segment_is_found_there_and_only_there() -> None:
    champion = _scored(_records(1, 1_500), seed=2)
    candidate = _scored(_records(3, 1_500), seed=4, blind_for="RENT")

    found = split("home_ownership", champion, candidate, False, 30, ("1", "2"))

    assert found.kind == "categorical" and found.candidate_role == ROLE_CANARY
    assert [s.name for s in found.segments] == sorted(HOMES)
    by_name = {s.name: s for s in found.segments}
    assert [name for name, s in by_name.items() if s.worse] == ["RENT"]
    assert found.to_dict()["worse"] == ["RENT"]
    rent = by_name["RENT"]
    # Each side's AUC is sklearn's on that side's records of the segment.
    mine = [r for r in champion if r[0]["home_ownership"] == "RENT"]
    assert rent.champion.scored == len(mine) == rent.champion.labelled
    assert rent.champion.auc == pytest.approx(
        roc_auc_score([r[3] for r in mine], [r[2] for r in mine])
    )
    assert rent.candidate.auc is not None and rent.candidate.auc < 0.6
    assert rent.champion.auc is not None and rent.champion.auc > 0.7


def test_a_candidate_that_ranks_a_segment_as_well_but_flags_nearly_all_of_it_is_worse() -> None:
    records = _records(11, 1_500)
    champion = _scored(records, seed=12)
    # The same scores pushed up for OWN: the ranking inside OWN is unchanged, its decisions not.
    candidate = [
        (f, 1, 0.5 + p / 2, y) if f["home_ownership"] == "OWN" else (f, c, p, y)
        for f, c, p, y in _scored(records, seed=12)
    ]

    found = split("home_ownership", champion, candidate, True, 30, ("1", "2"))

    own = next(s for s in found.segments if s.name == "OWN")
    assert own.auc_difference == pytest.approx(0.0, abs=1e-9)
    assert own.candidate.predicted_rate == 1.0
    assert own.candidate.error_rate == pytest.approx(1 - (own.candidate.outcome_rate or 0))
    assert [s.name for s in found.segments if s.worse] == ["OWN"]


def test_in_shadow_the_difference_is_paired_on_the_same_records() -> None:
    records = _records(5, 1_200)
    champion = _scored(records, seed=6)
    candidate = _scored(records, seed=6, blind_for="OWN")  # same labels: same seed

    found = split("home_ownership", champion, candidate, True, 30, ("1", "2"))

    by_name = {s.name: s for s in found.segments}
    assert [name for name, s in by_name.items() if s.worse] == ["OWN"]
    # Where both versions score alike, the paired difference is exactly nothing.
    assert by_name["RENT"].auc_difference == pytest.approx(0.0, abs=1e-12)
    assert by_name["RENT"].auc_difference_stderr == pytest.approx(0.0, abs=1e-9)


def test_a_number_is_cut_at_its_quartiles_low_to_high_and_missing_values_kept_apart() -> None:
    records = _records(7, 400) + [{"home_ownership": "RENT", "annual_income": None}] * 10
    rows = _scored(records, seed=8)

    found = split("annual_income", rows, rows[:0], False, 30, ("1", "2"))

    assert found.kind == "numeric"
    names = [s.name for s in found.segments]
    assert names[0].startswith("< ") and names[-2].startswith(">= ") and names[-1] == MISSING
    sizes = [s.champion.scored for s in found.segments[:-1]]
    assert all(90 <= size <= 110 for size in sizes), sizes
    assert found.segments[-1].champion.scored == 10
    # No outcomes of the candidate: no AUC, no difference, no verdict.
    assert all(s.candidate.auc is None and not s.worse for s in found.segments)


def test_an_unknown_feature_names_the_known_ones() -> None:
    rows = _scored(_records(9, 20), seed=10)
    with pytest.raises(PlatformError) as raised:
        split("home", rows, rows, False, 30, ("1", "2"))
    assert "'home'" in raised.value.message
    assert "annual_income, home_ownership" in (raised.value.hint or "")


def _log(tmp_path: Path, rows: list[dict]) -> sa.Engine:
    engine = prediction_log.connect(f"sqlite:///{tmp_path / 'predictions.db'}")
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows)
    return engine


def test_the_reads_take_each_versions_rows_of_the_rollout_and_pair_shadow_rows(
    tmp_path: Path,
) -> None:
    now = dt.datetime.now(dt.UTC)
    before, since = now - dt.timedelta(hours=1), now - dt.timedelta(minutes=5)

    def row(request: str, version: str, role: str, at: dt.datetime, p: float, label=None):
        return {
            "request_id": request,
            "record_index": 0,
            "created_at": at,
            "model_name": "m",
            "model_version": version,
            "features": json.dumps({"home_ownership": "RENT"}),
            "prediction": int(p >= 0.5),
            "probability": p,
            "label": label,
            "role": role,
        }

    engine = _log(
        tmp_path,
        [
            row("old", "1", ROLE_CHAMPION, before, 0.1, 0),  # before the rollout: left out
            row("a", "1", ROLE_CHAMPION, now, 0.2, 1),
            row("b", "2", ROLE_CANARY, now, 0.7),
            row("c", "1", ROLE_CHAMPION, now, 0.3, 0),
            row("c.shadow", "2", ROLE_SHADOW, now, 0.9, 0),
        ],
    )
    try:
        champion = _rows(engine, "m", since, ROLE_CHAMPION, 100, version="1")
        canary = _rows(engine, "m", since, ROLE_CANARY, 100, version="2")
        pairs = _shadow_pairs(engine, "m", since, 100)
        # A rollout that ended: only what was logged until it ended.
        ended = _rows(engine, "m", before, ROLE_CHAMPION, 100, until=since)
    finally:
        engine.dispose()

    assert sorted((r[2], r[3]) for r in champion) == [(0.2, 1), (0.3, 0)]
    assert canary == [({"home_ownership": "RENT"}, 1, 0.7, None)]
    # The shadow's score beside the answer it shadowed, with the answer's features and label.
    assert pairs == [({"home_ownership": "RENT"}, 0, 0.3, 1, 0.9, 0)]
    assert [r[2] for r in ended] == [0.1]
