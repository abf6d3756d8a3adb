"""Lab 19: a release shadows the champion and decides very differently on the same requests. Its
training read one feature in other units from a new warehouse view (its run records what serving
must apply, e.g. annual_income:x0.001 for incomes in thousands), but the version was registered
without that declaration, so serving hands it the units the champion takes."""

from __future__ import annotations

from mlops_lab.lab_engine.golden import roll_out_release, served_version
from mlops_lab.lab_engine.kit import CAUSE, Condition, LabContext, cause_reported, variant_of
from mlops_lab.lab_engine.progress import LabProgress
from platform_core.contract import TAG_SERVING_TRANSFORMS

# Which feature the new warehouse view reports in other units, and the factor from the units
# requests carry to the ones the release was trained on (serving's ``x<factor>`` transform).
VARIANTS = (
    {"feature": "annual_income", "factor": "0.001", "unit": "thousands of dollars"},
    {"feature": "loan_amount", "factor": "0.001", "unit": "thousands of dollars"},
    {"feature": "debt_to_income", "factor": "100", "unit": "percent"},
)
RELEASE = "release-2.5.0"
# Shadow answers that differ from the champion's on the same application by more than this much
# probability: what the check keeps of the incident, and what the page waits for.
FAR_APART = 0.2
MIN_EVIDENCE = 30


def trained_with(variant: dict) -> str:
    """What the release's training applied to its inputs, as serving must apply it too."""
    return f"{variant['feature']}:x{variant['factor']}"


def _training_data(rows: int, seed: int, variant: dict):
    """The release's training data: the new warehouse view reports the feature in other units."""
    from pipelines import data

    frame = data.generate(rows, "baseline", seed=seed)
    frame[variant["feature"]] = frame[variant["feature"]] * float(variant["factor"])
    return frame


def start(ctx: LabContext, variant: dict) -> dict:
    from platform_core.rollout import SHADOW, Plan

    seed = 1919
    frame = _training_data(4_000, seed, variant)
    state = roll_out_release(ctx, frame, seed, RELEASE, "warehouse:applications_v2", Plan(SHADOW))
    candidate = state["candidate"]
    # The training run records how it prepared its inputs; the release pipeline registered the
    # version without carrying that declaration over.
    run_id = ctx.mlflow.get_model_version(ctx.settings.model_name, candidate).run_id
    assert run_id, f"v{candidate} was registered without a run"
    ctx.mlflow.set_tag(run_id, TAG_SERVING_TRANSFORMS, trained_with(variant))
    ctx.say(
        f"[bold]Lab 19.[/] Release 2.5.0 (v{candidate}) scores every request in shadow beside "
        'the champion. The release manager: "offline it is as good as the champion, and the '
        'shadow has not failed one request. I would like to promote it today: any objection?"'
    )
    return state


def evidence(ctx: LabContext, progress_or_state) -> int:
    """Shadow answers since the start that differ much from the champion's answer to the same
    application: the proof."""
    import datetime as dt

    from platform_core.rollout_analysis import shadow_pairs

    state = getattr(progress_or_state, "state", progress_or_state)
    since = dt.datetime.fromtimestamp(state["started_at"], dt.UTC)
    pairs = shadow_pairs(ctx.log_engine(), ctx.settings.model_name, since, window=100_000)
    return sum(1 for _, answer, _, shadow, _ in pairs if abs(answer - shadow) > FAR_APART)


def await_evidence(ctx: LabContext, state: dict) -> None:
    ctx.wait_until(lambda: evidence(ctx, state) >= MIN_EVIDENCE, 120, "the shadow's first answers")


def prepared_unlike_training(ctx: LabContext, version: str) -> bool:
    """Whether serving prepares ``version``'s inputs (the transforms its version declares)
    otherwise than its training did (the transforms its run records)."""
    from mlflow.exceptions import MlflowException

    from mlops_lab.lab_engine.golden import trained_transforms, transform_items

    try:
        found = ctx.mlflow.get_model_version(ctx.settings.model_name, version)
    except MlflowException:
        return False  # gone: nobody can be answered by it
    declared = transform_items((found.tags or {}).get(TAG_SERVING_TRANSFORMS, ""))
    return declared != trained_transforms(ctx, found)


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    from platform_core import rollout as state

    candidate = progress.state["candidate"]
    running = state.current(ctx.mlflow, ctx.settings)
    champion = ctx.champion()
    current = str(champion.version) if champion else None
    served = served_version(ctx)
    kept = evidence(ctx, progress)
    # Every version whose answers reach anyone or are judged for promotion, and its role.
    tried = {current: "champion"} if current else {}
    if running is not None:
        tried[running.version] = running.plan.describe()
    wrong = {v: role for v, role in tried.items() if prepared_unlike_training(ctx, v)}
    return [
        Condition.of(
            "the shadow's answers are still logged",
            kept >= MIN_EVIDENCE,
            f"{kept} answers of v{candidate} far from the champion's kept as evidence",
            f"only {kept} shadow answers far from the champion's remain in the prediction log: "
            "the evidence of what the release would have decided is gone",
        ),
        Condition.of(
            "no version answers or is tried on inputs prepared unlike its training",
            not wrong,
            f"v{candidate} answers no one and is not tried"
            if candidate not in tried
            else f"serving prepares v{candidate}'s inputs as its training did",
            "; ".join(
                f"v{v} ({role}): serving prepares its inputs otherwise than its training did"
                for v, role in wrong.items()
            ),
        ),
        Condition.of(
            "the champion answers everyone",
            current is not None and served == current,
            f"v{current} is champion and answers /predict",
            f"champion {('v' + current) if current else 'none'}, /predict answers with "
            f"{('v' + served) if served else 'nothing'}",
        ),
        cause_reported("19", progress.answers, variant_of(VARIANTS, progress.state)["feature"]),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    candidate, variant = progress.state["candidate"], variant_of(VARIANTS, progress.state)
    feature, unit, trained = variant["feature"], variant["unit"], trained_with(variant)
    return [
        f"`mlops-lab rollout status`: on the same applications, how far apart are v{candidate}'s "
        "scores from the champion's, and how does each do on the outcomes that came back? Two "
        "sound models differ on a few close calls; their score distributions overlap.",
        "Same requests, two versions, very different answers: either they learned different "
        "things, or they do not see the same inputs. A model answers well only on inputs like "
        "those it was trained on: compare the live traffic with each version's training data "
        "(`mlops-lab drift check --help`).",
        "One feature of the traffic looks nothing like the candidate's training data, though it "
        "looks like the champion's. How did the candidate's training prepare that feature (its "
        "MLflow run: tags, reference sample, input example), and what does serving apply before "
        f"the model (the version's {TAG_SERVING_TRANSFORMS} tag; serving/transforms.py)?",
        f"v{candidate}'s training read {feature} in {unit}: its run records "
        f"{TAG_SERVING_TRANSFORMS}={trained}, its version declares nothing, so serving hands "
        "it the champion's units. Either stop it (`mlops-lab rollout abort --reason '...'`) or "
        "declare on the "
        f"version what its training applied (MlflowClient('{ctx.settings.mlflow_url}')"
        f".set_model_version_tag('{ctx.settings.model_name}', '{candidate}', "
        f"'{TAG_SERVING_TRANSFORMS}', '{trained}')) and watch the shadow agree. Then "
        f'`mlops-lab lab answer 19 cause="v{candidate} gets {feature} in other units than it '
        f'was trained on ({unit})"`.',
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    from pipelines import rollout
    from platform_core import rollout as state

    candidate, variant = progress.state["candidate"], variant_of(VARIANTS, progress.state)
    feature, unit = variant["feature"], variant["unit"]
    running = state.current(ctx.mlflow, ctx.settings)
    if running is not None and running.version == candidate:
        rollout.abort(
            ctx.mlflow,
            ctx.settings,
            by="lab solve",
            reason=f"its training read {feature} in {unit}; serving sends it other units",
        )
    progress.answers[CAUSE] = (
        f"v{candidate} was trained on {feature} in {unit} ({TAG_SERVING_TRANSFORMS}="
        f"{trained_with(variant)} on its run) but its version declares no transform, so "
        "serving hands it the champion's units: its answers are far from the champion's"
    )
