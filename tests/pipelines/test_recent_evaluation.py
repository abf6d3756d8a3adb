"""Judging a retrain on recent traffic (`mlops-lab retrain --evaluate-on recent`): the newest
labelled rows are held out by time, never trained on, and both models are compared on them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pydantic import SecretStr

from pipelines import data, lineage, sources
from pipelines.flows import retrain, train
from pipelines.validation import DataValidationError
from platform_core import contract
from platform_core.prediction_log import connect
from platform_core.settings import Settings
from tests.pipelines.conftest import environment_of
from tests.support import log_predictions

TYPES = sources.generated_types()


def _traffic(n: int, seed: int = 2) -> sources.Traffic:
    times = pd.Series(pd.date_range("2026-01-01", periods=n, freq="s", tz="UTC"))
    return sources.Traffic(data.generate(n, seed=seed), f"{n} labelled predictions", times)


def test_recent_evaluation_holds_out_the_newest_traffic_by_time() -> None:
    reference = data.generate(100, seed=1)
    traffic = _traffic(200)

    loaded = sources.for_retraining(reference, traffic, TYPES, "shift", evaluate_on="recent")

    assert loaded.holdout is not None
    pd.testing.assert_frame_equal(
        loaded.holdout.reset_index(drop=True),
        traffic.frame.iloc[150:][[*TYPES.names, TYPES.target]].reset_index(drop=True),
    )
    assert len(loaded.frame) == 100 + 150  # the reference and the older traffic only
    assert loaded.lineage == {
        lineage.TAG_EVALUATED_ON: "recent",
        lineage.TAG_TRAFFIC_ROWS: "150",
        lineage.TAG_TRAFFIC_SINCE: traffic.logged_at[0].isoformat(),
        lineage.TAG_TRAFFIC_UNTIL: traffic.logged_at[149].isoformat(),
    }


def test_the_default_keeps_judging_on_a_random_holdout() -> None:
    loaded = sources.for_retraining(data.generate(100, seed=1), _traffic(200), TYPES, "drift")

    assert loaded.holdout is None
    assert loaded.lineage[lineage.TAG_EVALUATED_ON] == "holdout"
    assert loaded.lineage[lineage.TAG_TRAFFIC_ROWS] == "200"


def test_too_little_recent_traffic_to_judge_on_says_what_to_do() -> None:
    with pytest.raises(DataValidationError, match="--traffic-rows"):
        sources.for_retraining(
            data.generate(100, seed=1), _traffic(100), TYPES, "shift", evaluate_on="recent"
        )


def test_after_a_real_shift_only_the_recent_judgement_promotes_the_retrain(
    fresh: Settings, prefect_api: None, tmp_path: Path
) -> None:
    """The lab 07 incident, end to end on real MLflow and Prefect: the champion knows the old
    population; 600 outcomes of the new one arrive. Judged on a random holdout of the reference
    plus that traffic, the retrain loses; learning from the traffic and judged on its newest
    rows, it wins and is promoted through the same gate."""
    settings = fresh.model_copy(
        update={
            "prediction_log_url": SecretStr(f"sqlite:///{tmp_path / 'log.db'}"),
            "reference_rows": 5_000,
        }
    )
    engine = connect(settings.prediction_log_db_url)
    log_predictions(
        engine, settings.model_name, data.generate(600, "new_segment", 5), "1", with_labels=True
    )
    with environment_of(settings):
        first = train(rows=6_000)
        automatic = retrain(reason="drift")
        judged_recent = retrain(reason="shift", recent_only=True, evaluate_on="recent")

    assert first.promoted
    assert not automatic.promoted, automatic.reason
    assert automatic.evaluated_on == "holdout"
    assert judged_recent.promoted, judged_recent.reason
    assert judged_recent.evaluated_on == "recent"
    assert judged_recent.rows == 450  # the newest quarter of 600 held out
    client = contract.client_for(settings)
    tags = client.get_model_version(settings.model_name, judged_recent.version).tags
    assert tags[lineage.TAG_EVALUATED_ON] == "recent"
    assert tags[lineage.TAG_TRAFFIC_ROWS] == "450"
    assert lineage.TAG_TRAFFIC_UNTIL in tags
