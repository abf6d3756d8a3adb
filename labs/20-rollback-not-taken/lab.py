"""Lab 20: a retention job moved the model files of release 3.0.0 (the champion until release
3.1.0 replaced it) out of the artifact store; a rollback of 3.1.0 then pointed the champion alias
at 3.0.0, which serving cannot load, so 3.1.0 kept answering. The variant says which files went.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from mlops_lab.lab_engine.golden import register_release, served_version, wait_until_served
from mlops_lab.lab_engine.kit import Condition, LabContext
from mlops_lab.lab_engine.progress import LabProgress

# What the job moved of the version's model: its whole folder, or one file of it.
VARIANTS = (
    {"removed": "every file of its model", "files": "*"},
    {"removed": "its serialized model (model.skops)", "files": "model.skops"},
    {"removed": "its MLmodel file", "files": "MLmodel"},
)
RELEASES = (("release-3.0.0", 2030), ("release-3.1.0", 2031))
# The job's soft delete: files moved under this folder of the artifact store, same layout.
TRASH = ".trash"
JOB_LOG = "artifact-retention.log"
# The gate's decision on a version it turned down (pipelines.registry.record_decision).
REFUSED = "rejected"


def artifact_root(ctx: LabContext) -> Path:
    return ctx.settings.paths.mlflow / "artifacts"


def model_folder(ctx: LabContext, version: str) -> Path:
    """Where the version's model files live in the local artifact store."""
    location = ctx.mlflow.get_model_version_download_uri(ctx.settings.model_name, version)
    scheme = "mlflow-artifacts:/"
    if not location.startswith(scheme):
        raise RuntimeError(f"v{version} is stored at {location}, outside the artifact store")
    return artifact_root(ctx) / location.removeprefix(scheme).lstrip("/")


def _trashed(ctx: LabContext, folder: Path) -> Path:
    return artifact_root(ctx) / TRASH / folder.relative_to(artifact_root(ctx))


def start(ctx: LabContext, variant: dict) -> dict:
    from pipelines import data, registry

    good = ctx.require_champion()
    released = []
    for release, seed in RELEASES:
        version = str(
            register_release(
                ctx, data.generate(4_000, "baseline", seed=seed), seed, release
            ).version
        )
        registry.record_decision(
            ctx.mlflow, ctx.settings, version, True, "beat the champion on held-out rows"
        )
        registry.promote(ctx.mlflow, ctx.settings, version, by="quality gate")
        released.append(version)
    target, rolled_back = released
    # An experiment of the same week the gate turned down (too little data).
    refused = str(
        register_release(
            ctx,
            data.generate(400, "baseline", seed=2032),
            2032,
            "exp",
            run_name="experiment-small-sample",
        ).version
    )
    registry.record_decision(
        ctx.mlflow,
        ctx.settings,
        refused,
        False,
        "ROC AUC on held-out rows below the champion's by more than the margin",
    )
    wait_until_served(ctx, rolled_back)
    _retention_job(ctx, target, variant["files"])
    registry.rollback(ctx.mlflow, ctx.settings)
    ctx.say(
        '[bold]Lab 20.[/] Alert: ServingChampionLoadFailed. Release manager: "we rolled back '
        f"release 3.1.0 (v{rolled_back}) twenty minutes ago, but every answer in the prediction "
        'log still comes from 3.1.0."'
    )
    return {
        "good": str(good.version),
        "target": target,
        "rolled_back": rolled_back,
        "refused": refused,
    }


def _retention_job(ctx: LabContext, version: str, files: str) -> None:
    """The nightly job: moves a no-longer-champion model's files to the store's trash."""
    folder = model_folder(ctx, version)
    chosen = sorted(p for p in folder.rglob("*") if p.is_file())
    if files != "*":
        chosen = [p for p in chosen if p.name == files]
    if not chosen:
        raise RuntimeError(f"v{version} has no {files!r} under {folder}")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = [f"{stamp} artifact retention: models of runs that hold no alias: v{version}\n"]
    for path in chosen:
        moved = _trashed(ctx, path)
        moved.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, moved)
        root = artifact_root(ctx)
        lines.append(
            f"{stamp} moved {path.relative_to(root)} to {moved.relative_to(root)} "
            "(soft delete, purged after 7 days)\n"
        )
    with (ctx.settings.paths.logs / JOB_LOG).open("a") as log:
        log.writelines(lines)


def loads_as_trained(ctx: LabContext, version) -> tuple[bool, str]:
    """Whether the version's files are there, were logged by its own run, and load."""
    import yaml
    from mlflow.artifacts import download_artifacts

    from platform_core import contract

    number = str(version.version)
    location = ctx.mlflow.get_model_version_download_uri(ctx.settings.model_name, number)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            described = download_artifacts(
                artifact_uri=f"{location}/MLmodel",
                dst_path=scratch,
                tracking_uri=ctx.settings.mlflow_url,
            )
            logged_by = (yaml.safe_load(Path(described).read_text()) or {}).get("run_id")
        except Exception as error:
            return False, f"v{number} has no readable MLmodel at {location} ({_short(error)})"
    if logged_by != version.run_id:
        return False, (
            f"the files at v{number}'s location were logged by run {logged_by}, not by "
            f"v{number}'s own run {version.run_id}"
        )
    try:
        contract.load_sklearn_model(contract.model_uri(ctx.settings, version=number))
    except Exception as error:
        return False, f"v{number} does not load: {_short(error)}"
    return True, f"v{number} loads what its run {str(logged_by)[:8]} logged"


def served_run(ctx: LabContext) -> str | None:
    """The training run of the model serving holds (its ``serving_model_info``), if it says."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from platform_core import http_calls

    try:
        text = http_calls.get(f"{ctx.serving_url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    for family in text_string_to_metric_families(text):
        if family.name == "serving_model_info":
            return next((s.labels.get("run_id") for s in family.samples if s.value == 1), None)
    return None


def _short(error: Exception) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first[:200]}"


def check(ctx: LabContext, progress: LabProgress) -> list[Condition]:
    from pipelines.registry import TAG_GATE_DECISION, TAG_GATE_REASON

    state = progress.state
    target, rolled_back = state["target"], state["rolled_back"]
    champion = ctx.champion()
    current = str(champion.version) if champion else None
    served = served_version(ctx)
    run = served_run(ctx)
    registered = {str(v.version) for v in ctx.versions()}
    loads, how = loads_as_trained(ctx, champion) if champion else (False, "there is no champion")
    tags = (champion.tags or {}) if champion else {}
    decision, reason = tags.get(TAG_GATE_DECISION), tags.get(TAG_GATE_REASON, "")
    kept = [v for v in (target, rolled_back) if v in registered]
    return [
        Condition.of(
            "the release that was rolled back is not champion",
            current is not None and current != rolled_back,
            f"v{current} is champion",
            "there is no champion"
            if current is None
            else f"v{rolled_back}, release 3.1.0, is champion again",
        ),
        Condition.of("the champion loads what its own run trained", loads, how, how),
        Condition.of(
            "the champion is not a version the quality gate refused",
            champion is not None and decision != REFUSED,
            f"v{current}: gate decision {decision or 'none recorded'}",
            f"v{current} was refused by the quality gate: {reason}"
            if champion is not None
            else "there is no champion",
        ),
        Condition.of(
            "serving answers with the champion's model",
            champion is not None and served == current and run == champion.run_id,
            f"/predict answers with v{served}, the model its run {run} trained",
            f"/predict answers with {('v' + served) if served else 'an error'}, not the champion "
            f"v{current}"
            if served != current
            else f"serving answers as v{current} with the model of run {run}, not v{current}'s "
            f"run {champion.run_id if champion else ''}: it loaded other files under that version",
        ),
        Condition.of(
            "both releases are still in the registry",
            len(kept) == 2,
            f"v{target} and v{rolled_back} are kept",
            "deleted from the registry: "
            + ", ".join(f"v{v}" for v in (target, rolled_back) if v not in kept),
        ),
    ]


def hints(ctx: LabContext, progress: LabProgress) -> list[str]:
    state = progress.state
    target, rolled_back = state["target"], state["rolled_back"]
    champion = ctx.champion()
    served = served_version(ctx)
    failures = [
        line.strip()
        for line in ctx.runtime.log_tail("serving", 200)
        if "Could not load" in line or "Error" in line
    ]
    return [
        "Two questions first: which version does the registry call champion (`mlops-lab model "
        "list`), and which one really answers (the prediction log's model_version, "
        "`serving_model_version` in Prometheus)?",
        f"The registry says v{champion.version if champion else 'none'}, serving answers with "
        f"v{served}. Serving's log says why it did not switch (`mlops-lab logs serving`)"
        + (f": {failures[-1][:300]}" if failures else "."),
        f"A registered version is a pointer to files: v{target}'s model lives in "
        f"{model_folder(ctx, target)}. What is there now? Something on this machine changed "
        f"the store overnight: look through {ctx.settings.paths.logs}.",
        f"Put v{target}'s files back where the version expects them (the job's log says where "
        "it moved them), or make champion another version the gate did not refuse and that loads "
        f"(`mlops-lab model promote N`; not v{rolled_back}). Serving follows at its next poll: "
        "no restart, which would leave it with nothing it can load.",
    ]


def solve(ctx: LabContext, progress: LabProgress) -> None:
    _put_back(ctx, progress.state["target"])


def _put_back(ctx: LabContext, version: str) -> None:
    """The version's files back from the trash, over anything put in their place."""
    folder = model_folder(ctx, version)
    trashed = _trashed(ctx, folder)
    if not trashed.exists():
        return
    for path in sorted(p for p in trashed.rglob("*") if p.is_file()):
        home = folder / path.relative_to(trashed)
        home.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, home)
    shutil.rmtree(trashed)


def reset(ctx: LabContext, progress: LabProgress) -> None:
    target = progress.state.get("target")
    if target and target in {str(v.version) for v in ctx.versions()}:
        _put_back(ctx, target)
    shutil.rmtree(artifact_root(ctx) / TRASH, ignore_errors=True)
    (ctx.settings.paths.logs / JOB_LOG).unlink(missing_ok=True)
