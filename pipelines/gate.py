"""The quality gate: may this challenger replace the champion?

Rules, in order:

1. Its held-out AUC must reach the absolute floor (``gate_min_auc``), whatever the champion does.
2. If there is a champion, it must expect the same features; otherwise the two cannot be
   compared, and serving clients would break: a person has to decide (``model promote``).
3. It must beat the champion's AUC *on the challenger's own held-out rows* by ``gate_margin_auc``.
   Scoring both models on the same rows is what makes the comparison fair: the champion's
   recorded AUC was measured on other data, perhaps from another population.
0. Before any of that, sanity (``gate_sanity_checks``): results too good to be true are refused.
   A held-out AUC above ``gate_max_auc`` for credit risk, or one feature that on its own separates
   defaulters with an AUC above ``gate_max_feature_auc``, means the data holds the answer (a join
   that brought in what happens after the outcome): the model would be worthless in production,
   however well it scores offline.

The decision is a pure function of numbers so it can be tested and explained without MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from platform_core.contract import FeatureTypes


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    champion_version: str | None = None
    # The champion's AUC on the challenger's held-out rows (None: first model or not comparable).
    champion_auc: float | None = None
    # The margin it had to beat the champion by (None: no champion to beat).
    margin: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def decide(
    auc: float,
    min_auc: float,
    margin: float,
    champion_version: str | None = None,
    champion_auc: float | None = None,
) -> GateDecision:
    """Apply rules 1 and 3 (rule 2 is :func:`schema_difference`)."""
    floor_ok = auc >= min_auc
    floor = f"AUC {auc:.4f} {'reaches' if floor_ok else 'is below'} the floor {min_auc:.3f}"
    if champion_version is None or champion_auc is None:
        return GateDecision(promote=floor_ok, reason=f"first model; {floor}" if floor_ok else floor)

    gain = auc - champion_auc
    beats = gain >= margin
    scores = f"AUC {auc:.4f} vs {champion_auc:.4f} on the same held-out rows"
    if beats:
        versus = f"beats champion v{champion_version} by {gain:.4f}, margin {margin:.3f} ({scores})"
    else:
        versus = f"does not beat champion v{champion_version} by the margin {margin:.3f} ({scores})"
    reason = versus if floor_ok else f"{floor}; {versus}"
    return GateDecision(floor_ok and beats, reason, champion_version, champion_auc, margin)


def schema_difference(champion: FeatureTypes, challenger: FeatureTypes) -> str | None:
    """Why the two models cannot be compared, or None when they expect the same inputs."""
    differences = []
    missing = [n for n in champion.names if n not in challenger.kinds]
    extra = [n for n in challenger.names if n not in champion.kinds]
    retyped = [
        f"{n} ({champion.kinds[n]} -> {challenger.kinds[n]})"
        for n in champion.names
        if n in challenger.kinds and champion.kinds[n] != challenger.kinds[n]
    ]
    if champion.target != challenger.target:
        differences.append(f"target {champion.target!r} -> {challenger.target!r}")
    if missing:
        differences.append(f"features dropped: {', '.join(missing)}")
    if extra:
        differences.append(f"features added: {', '.join(extra)}")
    if retyped:
        differences.append(f"features retyped: {', '.join(retyped)}")
    return "; ".join(differences) or None


def not_comparable(champion_version: str, difference: str) -> GateDecision:
    return GateDecision(
        promote=False,
        reason=(
            f"not comparable with champion v{champion_version}, whose inputs differ "
            f"({difference}); promoting it would break serving clients, so a person decides: "
            "`mlops-lab model promote VERSION`"
        ),
        champion_version=champion_version,
    )


def single_feature_aucs(frame, types: FeatureTypes) -> dict[str, float]:
    """How well each feature alone separates the classes in ``frame`` (features plus target):
    the ROC AUC of the raw value (numerics) or of the category's share of positives
    (categoricals), folded so that 0.5 is useless and 1.0 is a perfect separator."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    labels = frame[types.target].astype(int)
    if labels.nunique() < 2:
        return {}
    aucs = {}
    for name in types.names:
        column = frame[name]
        if types.kinds[name] == "numeric":
            score = pd.to_numeric(column, errors="coerce")
            score = score.fillna(score.median())
        else:
            keys = column.astype(str)
            score = keys.map(labels.groupby(keys).mean())
        if score.nunique() < 2:
            continue
        auc = float(roc_auc_score(labels, score))
        aucs[name] = max(auc, 1.0 - auc)
    return aucs


def sanity_problems(
    auc: float, feature_aucs: dict[str, float], max_auc: float, max_feature_auc: float
) -> list[str]:
    """Why a model's results are too good to be true (empty: nothing implausible)."""
    problems = []
    if auc > max_auc:
        problems.append(
            f"held-out AUC {auc:.4f} is above the plausible ceiling {max_auc:.3f} for this problem"
        )
    leaks = sorted(
        ((name, value) for name, value in feature_aucs.items() if value > max_feature_auc),
        key=lambda item: -item[1],
    )
    problems.extend(
        f"feature {name!r} alone separates the classes with AUC {value:.4f} "
        f"(ceiling {max_feature_auc:.3f}): it likely encodes the label"
        for name, value in leaks
    )
    return problems


def implausible(problems: list[str], champion_version: str | None = None) -> GateDecision:
    return GateDecision(
        promote=False,
        reason="too good to be true, so not promoted: " + "; ".join(problems) + ". Look for a "
        "leak (a column known only after the outcome) before trusting this model.",
        champion_version=champion_version,
    )
