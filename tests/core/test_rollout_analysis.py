"""The statistics of the rollout analysis, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from platform_core.rollout_analysis import delong


def _scores(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    first = labels * 0.8 + rng.normal(size=n)
    second = first + rng.normal(scale=0.5, size=n)  # correlated with the first, as two models are
    return labels, first, second


def test_delong_aucs_are_sklearns() -> None:
    labels, first, second = _scores(1)
    result = delong(labels.tolist(), [first.tolist(), second.tolist()])
    assert result is not None
    aucs, _ = result
    assert aucs == pytest.approx([roc_auc_score(labels, first), roc_auc_score(labels, second)])


def test_delong_standard_errors_match_a_bootstrap() -> None:
    labels, first, second = _scores(2)
    result = delong(labels.tolist(), [first.tolist(), second.tolist()])
    assert result is not None
    _, cov = result
    rng = np.random.default_rng(3)
    singles, differences = [], []
    for _ in range(400):
        pick = rng.integers(0, len(labels), len(labels))
        one = roc_auc_score(labels[pick], first[pick])
        singles.append(one)
        differences.append(roc_auc_score(labels[pick], second[pick]) - one)
    paired = (cov[0][0] + cov[1][1] - 2 * cov[0][1]) ** 0.5
    assert cov[0][0] ** 0.5 == pytest.approx(np.std(singles), rel=0.2)
    assert paired == pytest.approx(np.std(differences), rel=0.2)
    # Paired, the difference is known better than either AUC.
    assert paired < cov[0][0] ** 0.5 / 1.5


def test_delong_needs_enough_labels_of_both_classes() -> None:
    assert delong([1] * 50, [[0.5] * 50]) is None
    assert delong([0, 1] * 5, [[0.1, 0.9] * 5], minimum=30) is None
