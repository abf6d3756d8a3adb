"""How the served model does on traffic whose true outcome is known (labels from feedback).

Drift says the inputs changed; only labels say whether the model got worse. Concept drift (the
same applicants, a different risk mechanism) is invisible to drift and shows up here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score


@dataclass(frozen=True)
class Performance:
    labelled_rows: int
    # None until there are enough labels; AUC also needs both outcomes in the window.
    accuracy: float | None
    roc_auc: float | None


def measure(labelled: pd.DataFrame, min_labels: int) -> Performance:
    """Accuracy and ROC AUC of the logged predictions against their feedback labels."""
    rows = len(labelled)
    if rows < min_labels:
        return Performance(rows, None, None)
    labels = labelled["label"].astype(int)
    accuracy = float(accuracy_score(labels, labelled["prediction"].astype(int)))
    roc_auc = (
        float(roc_auc_score(labels, labelled["probability"].astype(float)))
        if labels.nunique() == 2
        else None
    )
    return Performance(rows, accuracy, roc_auc)
