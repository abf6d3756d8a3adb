"""The quality gate: may this challenger replace the champion?

Rules, in order:

1. Its held-out AUC must reach the absolute floor (``gate_min_auc``), whatever the champion does.
2. If there is a champion, it must expect the same features; otherwise the two cannot be
   compared, and serving clients would break: a person has to decide (``model promote``).
3. It must beat the champion's AUC *on the challenger's own held-out rows* by ``gate_margin_auc``.
   Scoring both models on the same rows is what makes the comparison fair: the champion's
   recorded AUC was measured on other data, perhaps from another population.

The decision is a pure function of numbers so it can be tested and explained without MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlops_lab.core.contract import FeatureTypes


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    champion_version: str | None = None
    # The champion's AUC on the challenger's held-out rows (None: first model or not comparable).
    champion_auc: float | None = None

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
    return GateDecision(floor_ok and beats, reason, champion_version, champion_auc)


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
