"""The platform on a real cluster, end to end: deploy with the runtime's own code, train, predict
through the serving Service, find the prediction in the in-cluster PostgreSQL, and run the
Kubernetes-only labs 14, 15, 16, 17, 25 and 26 (26 relies on the cluster enforcing NetworkPolicies:
kind's kindnet, or scripts/ci/network_policy.py on CI's node; 17 on kube-prometheus-stack, or
scripts/ci/prometheus_operator.py there) and two labs marked `any` (start → check fails → solve →
check passes → reset).

Which cluster (skipped with the reason when none answers):
- kind, when Docker answers and kind, kubectl and terraform are installed (`--runtime kind`:
  Terraform creates the cluster on this test's free ports; destroyed afterwards);
- else the cluster ``KUBECONFIG`` points at (`--runtime kube`), e.g. CI's single-node cluster.
Parameters (environment):
- ``MLOPS_LAB_E2E_OVERLAY``: the overlay to apply (default k8s/overlays/kind; CI's cluster
  without DNS uses k8s/overlays/ci);
- ``MLOPS_LAB_E2E_ACCESS``: how the host reaches the Services on the kube runtime:
  ``port-forward`` (default) or ``nodeport`` (``http://<node IP>:<nodePort>``, for clusters whose
  node IP this machine routes to);
- ``MLOPS_LAB_E2E_KEEP=1`` leaves the platform running for a look afterwards;
- ``MLOPS_LAB_E2E_REQUIRED=1`` (CI, which provisions a cluster) fails instead of skipping when
  no cluster answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from mlops_lab.lab_engine.kit import LabContext
from mlops_lab.runtime.kube import host_processes
from mlops_lab.runtime.kube import plan as kube_plan
from mlops_lab.runtime.kube.kubectl import Kubectl
from mlops_lab.runtime.kube.plan import DEPLOYMENTS, KubePaths
from mlops_lab.runtime.kube.runtime import KubeRuntime
from mlops_lab.runtime.selection import RuntimeName, docker_engine_answers
from pipelines import data
from platform_core.settings import REPO_ROOT, Settings
from serving.schema import records_from_frame
from tests.support import make_settings, run_cli, wait_for

# The first test's setup deploys the platform: on a machine without the image cache that is a
# wheelhouse download and two image builds, longer than the suite's 10-minute limit per test.
pytestmark = [pytest.mark.xdist_group("k8s-e2e"), pytest.mark.timeout(1800)]
KUBERNETES_LAB = "16"  # runs on any cluster: needs neither kube-prometheus-stack nor DNS


def _which_cluster() -> tuple[RuntimeName | None, str]:
    engine_ok, engine_reason = docker_engine_answers()
    missing = [tool for tool in ("kind", "kubectl", "terraform") if shutil.which(tool) is None]
    if engine_ok and not missing:
        return RuntimeName.kind, f"{engine_reason}; kind, kubectl and terraform are installed"
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig or shutil.which("kubectl") is None:
        why = engine_reason if not engine_ok else f"{', '.join(missing)} not installed"
        return None, f"no cluster: {why}, and KUBECONFIG is not set"
    ok, detail = Kubectl(Path(kubeconfig)).reachable()
    if not ok:
        return None, f"KUBECONFIG={kubeconfig} but no API server answers ({detail})"
    if not engine_ok:
        return None, f"a cluster answers but the images cannot be built: {engine_reason}"
    return RuntimeName.kube, detail


def _node_port_settings(kubectl: Kubectl) -> dict:
    """Settings whose URLs are the node's NodePorts (``MLOPS_LAB_E2E_ACCESS=nodeport``)."""
    nodes = kubectl.items("nodes")
    addresses = nodes[0]["status"]["addresses"]
    ip = next(a["address"] for a in addresses if a["type"] == "InternalIP")
    ports = {}
    for service in kubectl.items("services"):
        port = service["spec"]["ports"][0]
        if port.get("nodePort") and service["metadata"]["name"] in DEPLOYMENTS[1:]:
            ports[f"{service['metadata']['name'].replace('-', '_')}_port"] = port["nodePort"]
    return {"host": ip, "allow_remote_access": True, **ports}


@pytest.fixture(scope="module")
def platform() -> Iterator[tuple[Settings, KubeRuntime]]:
    runtime_name, reason = _which_cluster()
    if runtime_name is None and os.environ.get("MLOPS_LAB_E2E_REQUIRED") == "1":
        pytest.fail(f"MLOPS_LAB_E2E_REQUIRED=1 (CI provisioned a cluster), but {reason}")
    if runtime_name is None:
        pytest.skip(reason)
    overlay = Path(os.environ.get("MLOPS_LAB_E2E_OVERLAY", REPO_ROOT / "k8s/overlays/kind"))
    settings = make_settings(startup_timeout_s=900.0)
    runtime = KubeRuntime(settings, runtime_name, overlay=overlay)
    try:
        runtime.up(force=True)
        if os.environ.get("MLOPS_LAB_E2E_ACCESS") == "nodeport":
            runtime.down()  # no port-forwards: the node's ports instead
            settings = make_settings(home=settings.home, **_node_port_settings(runtime.kubectl))
            runtime = KubeRuntime(settings, runtime_name, overlay=overlay, port_forward=False)
        yield settings, runtime
    finally:
        if os.environ.get("MLOPS_LAB_E2E_KEEP") != "1":
            # The namespace's pods end their grace periods while the rest of the suite runs.
            runtime.clean(wait=False)
        shutil.rmtree(settings.learner_home, ignore_errors=True)


def test_every_deployment_is_rolled_out_and_healthy(platform) -> None:
    settings, runtime = platform
    processes = runtime.processes()
    assert {name for name in DEPLOYMENTS if processes[name].running} == set(DEPLOYMENTS), processes
    assert all(processes[name].started_at for name in DEPLOYMENTS), processes
    rows = {row.name: row for row in runtime.status()}
    for name in DEPLOYMENTS:
        if name != "postgres":
            assert rows[name].healthy, f"{name}: {rows[name].state} {rows[name].detail}"
    assert json.loads((settings.home / "runtime.json").read_text())["runtime"] == runtime.name.value
    assert KubePaths(settings.home).overlay.joinpath("kustomization.yaml").exists()
    # The generated credentials live in the Secret's data only: `kubectl apply` would also copy
    # them, in plain text, into its last-applied annotation.
    secret = json.loads(
        runtime.kubectl.run("get", "secret", kube_plan.SECRET_NAME, "-o", "json").stdout
    )
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (
        secret["metadata"].get("annotations") or {}
    )


def _access_story(settings: Settings, runtime: KubeRuntime) -> str:
    """What a failure reaching the cluster from here needs: the pods (a restart?) and the end of
    each port-forward's log (did kubectl end it, and did its keeper start it again?)."""
    pods = runtime.kubectl.run("get", "pods", "-o", "wide", check=False)
    lines = [pods.stdout + pods.stderr]
    for log in sorted(settings.paths.logs.glob("port-forward-*.log")):
        lines.append(f"== {log.name}\n" + "\n".join(log.read_text().splitlines()[-8:]))
    return "\n".join(lines)


def test_training_then_a_prediction_lands_in_the_cluster_postgres(platform) -> None:
    settings, runtime = platform
    trained = run_cli(settings, "train", "--rows", "2000", "--seed", "7", timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:] + "\n" + _access_story(settings, runtime)
    record = records_from_frame(data.generate(1, "baseline", seed=3), data.FEATURE_NAMES)[0]
    url = settings.url(settings.serving_port, "/predict")

    last: dict[str, str] = {}

    def answered() -> dict | None:
        response = httpx.post(url, json={"records": [record]}, timeout=10)
        last["answer"] = f"HTTP {response.status_code}: {response.text[:500]}"
        return response.json() if response.status_code == 200 else None

    try:
        body = wait_for(answered, 300, interval_s=3, what=f"serving to answer at {url}")
    except AssertionError as error:
        logs = runtime.kubectl.run("logs", "deploy/serving", "--tail", "400", check=False)
        # Its own messages, not the access log of the polls above.
        lines = [line for line in logs.stdout.splitlines() if "(scheme=http" not in line]
        raise AssertionError(
            f"{error}\nlast answer: {last.get('answer')}\nserving's log, access lines left "
            "out:\n" + "\n".join(lines[-30:]) + logs.stderr
        ) from None
    version = str(body["model_version"])

    def logged() -> int:
        query = f"SELECT count(*) FROM predictions WHERE model_version = '{version}'"
        result = runtime.kubectl.run(
            "exec",
            "deploy/postgres",
            "--",
            "psql",
            "-U",
            "mlops",
            "-d",
            "predictions",
            "-tAc",
            query,
            check=False,
        )
        # Raised, so a failure quotes psql's own words (wait_for keeps the last error).
        assert result.returncode == 0, result.stderr.strip()[-500:]
        return int(result.stdout.strip() or 0)

    assert wait_for(logged, 60, interval_s=2, what="the prediction in PostgreSQL") >= 1


def test_a_forward_kubectl_ended_comes_back_by_itself(platform) -> None:
    """kubectl ends a port-forward on the first connection its pod refuses (a CI run's training
    failed with every later request to Prefect refused). Its keeper starts it again: no `status`,
    no `up`. After the training test: a champion serves, so /predict answers 200."""
    settings, runtime = platform
    if not runtime.port_forward:
        pytest.skip("MLOPS_LAB_E2E_ACCESS=nodeport: this machine reaches the node's ports")
    keeper = host_processes.running(runtime.paths.forwards)["serving"]
    url = settings.url(settings.serving_port, "/healthz")

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def kill_kubectl() -> None:
        (kubectl,) = psutil.Process(keeper).children()
        kubectl.kill()
        kubectl.wait(10)

    kill_kubectl()
    try:
        wait_for(answers, 30, interval_s=0.5, what="serving through the kept forward")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{_access_story(settings, runtime)}") from None
    assert host_processes.running(runtime.paths.forwards)["serving"] == keeper

    # A lab's request the moment kubectl ended: the kit retries once the keeper has restarted
    # it (it gave up when no forward had to be started).
    kill_kubectl()
    ctx = LabContext(settings, runtime=runtime)
    assert ctx.predict(ctx.sample_records(1)).status_code == 200


def test_status_follows_a_rollout_made_outside_the_runtime(platform) -> None:
    """A learner's `kubectl rollout restart` replaces serving's pod under its port-forward: the
    next `status` (and so the next `lab start`) found serving unhealthy ("Server disconnected")
    because its one probe was the request that ended the forward. It asks again while the keeper
    starts the forward on the new pod."""
    settings, runtime = platform
    if not runtime.port_forward:
        pytest.skip("MLOPS_LAB_E2E_ACCESS=nodeport: this machine reaches the node's ports")
    kubectl = runtime.kubectl
    selector = "app.kubernetes.io/name=serving"
    before = [pod["metadata"]["name"] for pod in kubectl.items("pods", selector)]
    kubectl.run("rollout", "restart", "deploy/serving")
    _serving_rolled_out(runtime)
    gone = [f"pod/{name}" for name in before]
    kubectl.run("wait", "--for=delete", *gone, "--timeout=300s", timeout_s=320, check=False)
    rows = {row.name: row for row in runtime.status()}
    assert rows["serving"].healthy, f"{rows['serving']}\n{_access_story(settings, runtime)}"


def test_the_front_end_on_this_machine_is_answered_by_the_cluster(platform) -> None:
    """The front end that labs start runs beside the cluster and reaches serving from outside,
    as a real client application would (after the training test: a champion serves)."""
    settings, runtime = platform
    runtime.start_on_demand("front-end")
    try:
        status_url = settings.url(settings.front_end_port, "/status")

        def answered() -> dict | None:
            body = httpx.get(status_url, timeout=5).json()
            return body if body["answered"] >= 10 else None

        body = wait_for(answered, 120, interval_s=2, what="the front end's requests answered")
        assert body["answered_by_model_version"], body
        shown = run_cli(settings, "logs", "front-end", "--lines", "20")
        assert shown.returncode == 0 and shown.stdout.strip(), shown.stderr
        # A drift check run here reads the cluster's prediction log, not this machine's file,
        # which no pod writes (it found "Only 0 predictions").
        drift = run_cli(settings, "drift", "check", "--window", "10", "--json")
        assert drift.returncode == 0, drift.stderr[-2000:]
        assert json.loads(drift.stdout)["window_rows"] == 10, drift.stdout[:2000]
    finally:
        runtime.stop_on_demand("front-end")
    assert not runtime.paths.on_demand.exists()  # nothing of ours left running on the host


# Labs on the cluster, none needing kube-prometheus-stack (CI's cluster lacks it): a
# Kubernetes-only one (16), and two marked `any`, proved through the Runtime interface: one whose
# fault is in the registry (13: a version's declared serving transforms, read by every serving
# pod at its next poll), one about monitoring (02: the drift monitor, and the prediction log read
# through a port-forward to the cluster's PostgreSQL). Labs 03 (109 s) and 04 (147 s) pass here
# too when added; they are left out to keep `make test` within its 20 minutes.
# MLOPS_LAB_E2E_LABS=07,08 runs others by hand.
CLUSTER_LABS = os.environ.get("MLOPS_LAB_E2E_LABS", f"{KUBERNETES_LAB},13,02").split(",")


@pytest.mark.parametrize("lab_id", CLUSTER_LABS)
def test_a_lab_breaks_is_refused_a_blind_fix_and_passes_on_the_cluster(
    platform, lab_id: str
) -> None:
    settings, runtime = platform
    # The first variant of a lab that has several: the one its README describes.
    started = run_cli(settings, "lab", "start", lab_id, "--seed", "0", timeout=900)
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        broken = run_cli(settings, "lab", "check", lab_id, timeout=300)
        assert broken.returncode != 0, broken.stdout
        if lab_id == "13":
            # A blind fix: every override deleted (there is none: the fault is in the registry).
            assert runtime.clear_overrides() == []
            blind = run_cli(settings, "lab", "check", lab_id, "--wait", "0", timeout=300)
            assert blind.returncode != 0
            assert "NO served answers equal the offline model's" in blind.stderr
        solved = run_cli(settings, "lab", "solve", lab_id, timeout=900)
        assert solved.returncode == 0, solved.stderr[-3000:]
        passed = run_cli(settings, "lab", "check", lab_id, "--wait", "240", "--why", timeout=600)
        assert passed.returncode == 0, passed.stdout + passed.stderr[-2000:]
    finally:
        reset = run_cli(settings, "lab", "reset", lab_id, timeout=900)
    assert reset.returncode == 0, reset.stdout + reset.stderr[-2000:]


@pytest.mark.parametrize("seed", [1, 2])
def test_lab_16s_other_variants_break_and_are_solved_on_the_cluster(platform, seed: int) -> None:
    """The first variant runs above with the other labs; seeds 1 and 2 draw the others."""
    settings, _runtime = platform
    started = run_cli(settings, "lab", "start", KUBERNETES_LAB, "--seed", str(seed), timeout=900)
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        broken = run_cli(settings, "lab", "check", KUBERNETES_LAB, "--why", timeout=300)
        assert broken.returncode != 0, broken.stdout
        assert "serving's pods run and are ready" in broken.stderr + broken.stdout
        solved = run_cli(settings, "lab", "solve", KUBERNETES_LAB, timeout=900)
        assert solved.returncode == 0, solved.stderr[-3000:]
        passed = run_cli(settings, "lab", "check", KUBERNETES_LAB, "--wait", "240", timeout=600)
        assert passed.returncode == 0, passed.stdout + passed.stderr[-2000:]
        assert f"Variant {seed + 1} of 3, seed {seed}" in " ".join(passed.stderr.split())
    finally:
        reset = run_cli(settings, "lab", "reset", KUBERNETES_LAB, timeout=900)
    assert reset.returncode == 0, reset.stdout + reset.stderr[-2000:]


def _serving_rolled_out(runtime: KubeRuntime) -> None:
    runtime.kubectl.run("rollout", "status", "deploy/serving", "--timeout=600s", timeout_s=620)


def _lab_check(
    settings: Settings, lab_id: str, wait_s: int = 0
) -> subprocess.CompletedProcess[str]:
    return run_cli(settings, "lab", "check", lab_id, "--wait", str(wait_s), "--why", timeout=600)


def _failing(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The names of the conditions a check says NO to (one line each, wrapped or not)."""
    said = " " + " ".join(result.stdout.split() + result.stderr.split())
    return [part.split(":")[0].strip() for part in said.split(" NO ")[1:]]


def _passes_in_its_variant(
    settings: Settings, lab_id: str, seed: int, solve: bool = True, reset: bool = True
) -> None:
    """The lab's own solve (unless the test fixed it), then its check passes within 240 s and
    names the variant the seed drew; then the reset (unless the next start goes on from the
    solve)."""
    if solve:
        solved = run_cli(settings, "lab", "solve", lab_id, timeout=900)
        assert solved.returncode == 0, solved.stderr[-3000:]
    passed = _lab_check(settings, lab_id, wait_s=240)
    assert passed.returncode == 0, passed.stdout + passed.stderr[-2000:]
    assert f"Variant {seed + 1} of 3, seed {seed}" in " ".join(passed.stderr.split())
    if reset:
        assert run_cli(settings, "lab", "reset", lab_id, timeout=900).returncode == 0


def _lab_25_variant(settings: Settings, runtime: KubeRuntime, seed: int) -> None:
    started = run_cli(settings, "lab", "start", "25", "--seed", str(seed), timeout=900)
    assert started.returncode == 0, started.stderr[-3000:]
    broken = _lab_check(settings, "25")
    assert broken.returncode != 0, broken.stdout
    assert any("get the CPU the burst needs" in name for name in _failing(broken)), broken.stdout


def test_lab_25_batch_calls_wrong_fixes_refused_right_fixes_pass(platform) -> None:
    """Lab 25 on the cluster: every variant breaks serving under a burst and is solved; a blind
    restart, the guard rails removed and (variant 2) the namespace's defaults deleted without
    new pods are refused; keeping a CPU request and dropping the ceiling is a right fix too."""
    settings, runtime = platform
    kubectl = runtime.kubectl
    try:
        _lab_25_variant(settings, runtime, seed=0)
        kubectl.run("rollout", "restart", "deploy/serving")  # a blind restart
        _serving_rolled_out(runtime)
        restarted = _lab_check(settings, "25")
        assert restarted.returncode != 0, restarted.stdout
        remove_resources = [{"op": "remove", "path": "/spec/template/spec/containers/0/resources"}]
        kubectl.patch("deployment", "serving", remove_resources, "json")  # the guard rails too
        _serving_rolled_out(runtime)
        unguarded = _lab_check(settings, "25")
        assert unguarded.returncode != 0, unguarded.stdout
        assert any("CPU reservation" in name for name in _failing(unguarded)), unguarded.stdout
        # A right fix that is not the reference one: a CPU request, no CPU ceiling.
        kubectl.run(
            "set", "resources", "deploy/serving", "-c", "serving",
            "--requests=cpu=250m,memory=512Mi", "--limits=memory=1536Mi",
        )  # fmt: skip
        _serving_rolled_out(runtime)
        passed = _lab_check(settings, "25", wait_s=240)
        assert passed.returncode == 0, passed.stdout + passed.stderr[-2000:]
        assert run_cli(settings, "lab", "reset", "25", timeout=900).returncode == 0

        for seed in (1, 2):
            _lab_25_variant(settings, runtime, seed=seed)
            if seed == 1:  # the namespace's defaults, deleted: the running pods keep them
                kubectl.run("delete", "limitrange", "mlops-lab-defaults")
                half = _lab_check(settings, "25")
                assert half.returncode != 0, half.stdout
            _passes_in_its_variant(settings, "25", seed)
    finally:
        reset = run_cli(settings, "lab", "reset", "25", timeout=900)
    assert reset.returncode == 0, reset.stdout + reset.stderr[-2000:]
    assert not kubectl.exists("limitrange", "mlops-lab-defaults")
    resources = kubectl.get("deployment", "serving")["spec"]["template"]["spec"]["containers"][0]
    assert resources["resources"]["limits"]["cpu"] == "1", resources["resources"]


def _lab_26_broken(settings: Settings, seed: int) -> None:
    started = run_cli(settings, "lab", "start", "26", "--seed", str(seed), timeout=900)
    assert started.returncode == 0, started.stderr[-3000:]
    broken = _lab_check(settings, "26")
    failing = _failing(broken)
    said = broken.stdout + broken.stderr[-2000:]
    assert "every serving pod reaches MLflow" in failing, said
    assert "serving answers with the champion" in failing, said
    assert not any("other namespaces" in name for name in failing), said


def test_lab_26_serving_cut_off_wrong_fixes_refused_right_fixes_pass(platform) -> None:
    """Lab 26 on the cluster, whose NetworkPolicies are enforced (kind's kindnet; on CI's node
    scripts/ci/network_policy.py): each variant cuts serving off from MLflow (a call from inside a
    serving pod times out, the new champion is not served) and is let through again. A blind
    restart, MLflow opened to every pod and every policy deleted are refused; an extra policy of
    the learner's own, letting serving in, passes. Between the variants, the reset brings back
    the overlay's policies and nothing else."""
    settings, runtime = platform
    kubectl = runtime.kubectl
    mlflow_pods = {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}

    def policy(name: str, ingress: list[dict]) -> dict:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name},
            "spec": {"podSelector": mlflow_pods, "policyTypes": ["Ingress"], "ingress": ingress},
        }

    def safeguard_refused(result: subprocess.CompletedProcess[str]) -> None:
        said = result.stdout + result.stderr[-2000:]
        assert result.returncode != 0, said
        assert any("other namespaces" in name for name in _failing(result)), said

    try:
        _lab_26_broken(settings, seed=0)
        kubectl.run("rollout", "restart", "deploy/serving")  # a blind restart: never gets ready
        restarted = _lab_check(settings, "26")
        assert restarted.returncode != 0, restarted.stdout
        said = restarted.stdout + restarted.stderr[-2000:]
        assert "every serving pod reaches MLflow" in _failing(restarted), said
        kubectl.apply(policy("mlflow-from-anyone", [{}]))  # MLflow opened to every pod
        safeguard_refused(_lab_check(settings, "26"))
        kubectl.run("delete", "networkpolicy", "mlflow-from-anyone")
        # A right fix that is not the reference one: a policy of the learner's own.
        from_serving = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "serving"}}}
        kubectl.apply(
            policy("serving-to-mlflow", [{"from": [from_serving], "ports": [{"port": 5000}]}])
        )
        passed = _lab_check(settings, "26", wait_s=240)
        assert passed.returncode == 0, passed.stdout + passed.stderr[-2000:]
        kubectl.run("delete", "networkpolicy", "--all")  # every policy deleted
        safeguard_refused(_lab_check(settings, "26"))
        assert run_cli(settings, "lab", "reset", "26", timeout=900).returncode == 0

        for seed in (1, 2):
            _lab_26_broken(settings, seed=seed)
            _passes_in_its_variant(settings, "26", seed)
    finally:
        reset = run_cli(settings, "lab", "reset", "26", timeout=900)
    assert reset.returncode == 0, reset.stdout + reset.stderr[-2000:]
    names = {p["metadata"]["name"] for p in kubectl.items("networkpolicies")}
    assert {
        "default-deny-ingress",
        "postgres-from-clients",
        "http-from-platform-and-monitoring",
    } <= names
    assert not names & {"mlflow-from-clients", "serving-egress", "serving-to-mlflow"}, names
    assert not Kubectl(kubectl.kubeconfig, namespace="default").exists("pod", "mlops-lab-neighbour")


def test_lab_15_every_variant_stalls_and_only_a_probe_that_asks_readiness_passes(platform) -> None:
    """Lab 15 on the cluster, each variant's probe (a path, a port, a scheme serving does not
    answer on): the rollout stalls. A blind restart is refused, and so is a probe that completes
    the rollout by asking nothing (a TCP check); the reference fix passes, and so does `kubectl
    rollout undo`, the fast mitigation the lab accepts."""
    settings, runtime = platform
    kubectl = runtime.kubectl
    try:
        for seed in (0, 1, 2):
            started = run_cli(settings, "lab", "start", "15", "--seed", str(seed), timeout=900)
            assert started.returncode == 0, started.stderr[-3000:]
            stalled = _lab_check(settings, "15")
            assert stalled.returncode != 0, stalled.stdout
            assert any("rollout is complete" in name for name in _failing(stalled))
            if seed == 0:
                kubectl.run("rollout", "restart", "deploy/serving")  # a blind restart
                restarted = _lab_check(settings, "15")
                assert restarted.returncode != 0, restarted.stdout
                tcp = {"tcpSocket": {"port": "http"}, "periodSeconds": 5}
                probe = "/spec/template/spec/containers/0/readinessProbe"
                kubectl.patch(
                    "deployment", "serving", [{"op": "add", "path": probe, "value": tcp}], "json"
                )
                _serving_rolled_out(runtime)
                # A TCP probe lets a pod in before its model is loaded (the very fault): serving
                # may not answer for the first seconds, and then only the probe is said wrong.
                deadline = time.monotonic() + 180
                while True:
                    asks_nothing = _lab_check(settings, "15")
                    failing = _failing(asks_nothing)
                    if "serving answers" not in failing or time.monotonic() > deadline:
                        break
                    time.sleep(5)
                assert asks_nothing.returncode != 0, asks_nothing.stdout
                assert failing == ["serving can still say when it is not ready"], (
                    asks_nothing.stdout
                )
            if seed == 2:
                kubectl.run("rollout", "undo", "deploy/serving")  # back to the last good release
            _passes_in_its_variant(settings, "15", seed, solve=seed != 2)
    finally:
        reset = run_cli(settings, "lab", "reset", "15", timeout=900)
    assert reset.returncode == 0, reset.stdout + reset.stderr[-2000:]
    serving = kubectl.get("deployment", "serving")
    probe = serving["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["httpGet"]["path"] == "/readyz" and probe["httpGet"]["scheme"] == "HTTP", probe
    assert serving["spec"]["progressDeadlineSeconds"] == 600, serving["spec"]


# What a check still says of pods that have just become ready: lab 14 counts serving stable
# after 30 s without a restart. A wrong fix is refused for what it left wrong before then.
SETTLING = "serving stays up"


def _until_only(settings: Settings, lab_id: str, condition: str, within_s: float = 300) -> None:
    """Checks until the one condition failing is ``condition``, but for serving's stability
    (a wrong fix that brought serving back, refused for what it left wrong), or fails with the
    last check's words."""
    deadline = time.monotonic() + within_s
    while True:
        result = _lab_check(settings, lab_id)
        if result.returncode != 0 and [f for f in _failing(result) if f != SETTLING] == [condition]:
            return
        assert time.monotonic() < deadline, result.stdout + result.stderr[-2000:]
        time.sleep(5)


def test_lab_14_every_variant_keeps_restarting_and_only_sized_resources_pass(platform) -> None:
    """Lab 14 on the cluster, each variant's right-sizing (a memory limit in the Deployment, a
    namespace LimitRange's default memory limit, a CPU limit): serving never turns Ready. Wrong
    fixes that bring serving back are refused for what they leave: the memory limit removed, the
    LimitRange deleted (the pod then has no limit at all), a startup probe that waits longer for
    a starved container. A namespace default raised to a sized limit, the pod started again,
    passes: the check reads the limits the pods got at admission."""
    settings, runtime = platform
    kubectl = runtime.kubectl
    sized = "serving has room for what it uses, under a ceiling"
    path = "/spec/template/spec/containers/0"

    def broken(seed: int) -> subprocess.CompletedProcess[str]:
        started = run_cli(settings, "lab", "start", "14", "--seed", str(seed), timeout=900)
        assert started.returncode == 0, started.stderr[-3000:]
        result = _lab_check(settings, "14")
        assert result.returncode != 0, result.stdout
        assert "serving is rolled out and ready" in _failing(result), result.stdout
        return result

    def limit_range(memory: str) -> dict:
        default = {"default": {"memory": memory}, "defaultRequest": {"memory": "512Mi"}}
        return {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "namespace-defaults"},
            "spec": {"limits": [{"type": "Container", **default}]},
        }

    try:
        broken(seed=0)
        kubectl.run("rollout", "restart", "deploy/serving")  # a blind restart
        assert _lab_check(settings, "14").returncode != 0
        remove = [{"op": "remove", "path": f"{path}/resources/limits/memory"}]
        kubectl.patch("deployment", "serving", remove, "json")  # the guard rail gone
        _until_only(settings, "14", sized)
        _passes_in_its_variant(settings, "14", 0)

        broken(seed=1)
        assert kubectl.exists("limitrange", "namespace-defaults")
        kubectl.run("delete", "limitrange", "namespace-defaults")
        kubectl.run("delete", "pod", "-l", "app.kubernetes.io/name=serving", "--wait=false")
        _until_only(settings, "14", sized)  # the pod now has no memory limit at all
        kubectl.apply(limit_range("1536Mi"))  # the namespace default, sized this time
        kubectl.run("delete", "pod", "-l", "app.kubernetes.io/name=serving", "--wait=false")
        _passes_in_its_variant(settings, "14", 1, solve=False)
        assert not kubectl.exists("limitrange", "namespace-defaults")

        starved = broken(seed=2)
        said = " ".join((starved.stdout + starved.stderr).split())
        assert "CPU limit of 20m" in said, said
        patience = [
            {"op": "replace", "path": f"{path}/startupProbe/failureThreshold", "value": 500}
        ]
        kubectl.patch("deployment", "serving", patience, "json")  # wait longer for it
        waited = _lab_check(settings, "14")
        assert waited.returncode != 0 and sized in _failing(waited), waited.stderr
        _passes_in_its_variant(settings, "14", 2)
    finally:
        reset = run_cli(settings, "lab", "reset", "14", timeout=900)
    assert reset.returncode == 0, reset.stdout + reset.stderr[-2000:]
    serving = kubectl.get("deployment", "serving")
    container = serving["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1536Mi"}, container
    assert container["startupProbe"]["failureThreshold"] == 36, container["startupProbe"]
    assert serving["spec"]["strategy"]["type"] == "RollingUpdate", serving["spec"]["strategy"]


@pytest.fixture
def kube_prometheus(platform, tmp_path: Path) -> Iterator[None]:
    """Prometheus taking ServiceMonitors as kube-prometheus-stack does, for lab 17: the
    cluster's own where it has one (kind's); on CI's node, which reaches no Helm chart, Debian's
    Prometheus and Alertmanager on this machine with scripts/ci/prometheus_operator.py rendering
    the ServiceMonitors the Prometheus object in scripts/ci/prometheus-operator.yaml takes (the
    platform's own, from the monitoring component). All of it goes at the end: the tests after
    this one meet a cluster without Prometheus again."""
    settings, runtime = platform
    if runtime.monitoring_installed():
        yield
        return
    work = Path(os.environ.get("MLOPS_LAB_K8S_WORK", "/var/lib/mlops-lab-ci/k8s"))
    if not (work / "pki" / "admin.crt").exists():
        pytest.skip(f"no kube-prometheus-stack here, and this is not CI's node ({work} absent)")
    kubectl = runtime.kubectl
    stand_in = REPO_ROOT / "scripts/ci/prometheus-operator.yaml"
    monitors = REPO_ROOT / "k8s/components/monitoring/servicemonitors.yaml"
    # Its custom resources only once their kinds are served: a second apply.
    # Its namespace is monitoring (kubectl refuses another for the Prometheus object in it).
    kubectl.run("apply", "-f", str(stand_in), namespace="monitoring", check=False)
    kubectl.run(
        "wait",
        "--for=condition=established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheuses.monitoring.coreos.com",
    )
    kubectl.run("apply", "-f", str(stand_in), namespace="monitoring")
    kubectl.run("apply", "-f", str(monitors))
    api = kubectl.run("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
    log = tmp_path / "prometheus-operator.log"
    with log.open("w") as out:
        loop = subprocess.Popen(
            [
                "python3",
                str(REPO_ROOT / "scripts/ci/prometheus_operator.py"),
                f"--work-dir={work}",
                f"--api={api.stdout.strip()}",
                f"--data={tmp_path / 'monitoring'}",
                f"--prometheus-port={settings.prometheus_port}",
                f"--alertmanager-port={settings.alertmanager_port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(runtime.monitoring_installed, 90, interval_s=1, what="the stand-in", log=log)
        yield
    finally:
        loop.terminate()  # it stops its Prometheus and Alertmanager
        try:
            loop.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(loop.pid, 9)
            loop.wait(10)
        kubectl.run("delete", "--ignore-not-found", "-f", str(monitors), check=False)
        kubectl.run(
            "delete", "--ignore-not-found", "-f", str(stand_in), namespace="monitoring", check=False
        )


def test_lab_17_every_variant_leaves_serving_unscraped_until_its_link_is_mended(
    platform, kube_prometheus
) -> None:
    """Lab 17 on the cluster, each variant's cleanup of serving's ServiceMonitor (the label the
    Prometheus object takes it by, the endpoint's port name, its selector): Prometheus has no
    serving target and no series of serving's. Deleting overrides and a blind restart of serving
    are refused; the lab's solve passes, and so does mending the other end (the Service given the
    label the changed selector asks for). One reset at the end: a solved lab starts again from
    where its fix left the platform."""
    settings, runtime = platform
    kubectl = runtime.kubectl
    gone = ["Prometheus has a serving target, and it is up", "serving's metrics are in Prometheus"]
    try:
        for seed in range(3):
            started = run_cli(settings, "lab", "start", "17", "--seed", str(seed), timeout=900)
            assert started.returncode == 0, started.stderr[-3000:]
            broken = _lab_check(settings, "17")
            assert _failing(broken) == gone, broken.stdout + broken.stderr
            if seed == 0:
                # A hurried learner's wrong fixes: delete every override (there is none), then
                # restart serving. Prometheus still takes nothing of serving's.
                assert runtime.clear_overrides() == []
                kubectl.run("rollout", "restart", "deploy/serving")
                _serving_rolled_out(runtime)
                blind = _lab_check(settings, "17")
                assert _failing(blind) == gone, blind.stdout + blind.stderr
            if seed == 2:
                kubectl.run("label", "service", "serving", "app=serving")
            _passes_in_its_variant(settings, "17", seed, solve=seed != 2, reset=False)
    finally:
        kubectl.run("label", "service", "serving", "app-", check=False)
        reset = run_cli(settings, "lab", "reset", "17", timeout=900)
    assert reset.returncode == 0, reset.stdout + reset.stderr[-2000:]
    monitor = kubectl.get("servicemonitor", "serving")
    assert monitor["metadata"]["labels"]["release"] == "kps", monitor["metadata"]
    assert monitor["spec"]["endpoints"][0]["port"] == "http", monitor["spec"]
    assert monitor["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "serving"}}, (
        monitor["spec"]
    )


def test_a_lab_reading_prometheus_is_refused_on_a_cluster_without_it(platform) -> None:
    """CI's cluster has no kube-prometheus-stack: lab 10 (its alert, its p99) cannot run there,
    and says so before it changes anything (it timed out waiting for Prometheus, serving already
    slowed down)."""
    settings, runtime = platform
    assert not runtime.monitoring_installed()
    started = run_cli(settings, "lab", "start", "10", timeout=300)
    assert started.returncode == 1
    assert "kube-prometheus-stack is not installed" in started.stderr, started.stderr[-2000:]
    assert runtime.clear_overrides() == []
    status = run_cli(settings, "lab", "list", "--json")
    assert status.returncode == 0, status.stderr
    labs = {lab["id"]: lab for lab in json.loads(status.stdout)}
    assert labs["10"]["status"] == "not started", labs["10"]


def test_an_override_reaches_its_deployment_and_clearing_it_restores_the_settings(
    platform,
) -> None:
    """The seam the labs marked `any` use on a cluster: an override is the Deployment's own
    environment (a rollout), and clearing it rolls the platform's settings back out."""
    settings, runtime = platform
    health = settings.url(settings.flows_port, "/health")

    def gate_floor() -> float | None:
        runtime.reconnect()  # the port-forward was bound to the pod the rollout replaced
        try:
            return httpx.get(health, timeout=10).json()["gate"]["min_auc"]
        except httpx.HTTPError:
            return None

    runtime.set_override("flows", {"MLOPS_LAB_GATE_MIN_AUC": "0.55"})
    env = runtime.kubectl.get("deployment", "flows")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "MLOPS_LAB_GATE_MIN_AUC", "value": "0.55"} in env.get("env", [])
    wait_for(lambda: gate_floor() == 0.55, 120, what="flows to run with the override")
    assert runtime.processes()["flows"].running

    assert runtime.clear_overrides() == ["flows"]
    env = runtime.kubectl.get("deployment", "flows")["spec"]["template"]["spec"]["containers"][0]
    assert all(item["name"] != "MLOPS_LAB_GATE_MIN_AUC" for item in env.get("env", []))
    wait_for(lambda: gate_floor() == settings.gate_min_auc, 120, what="flows back on the settings")
    assert runtime.clear_overrides() == []


def test_a_namespace_still_being_deleted_is_waited_for(platform) -> None:
    """`up` right after a `clean` that did not wait found the namespace Terminating, and creating
    the Secret in it failed. A namespace held by a finalizer stands for the slow deletion here."""
    _settings, runtime = platform
    kubectl = Kubectl(runtime.kubectl.kubeconfig, namespace="mlops-lab-terminating")
    kubectl.run("create", "namespace", kubectl.namespace)
    held = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["mlops-lab.test/hold"]},
    }
    kubectl.apply(held)
    kubectl.run("delete", "namespace", kubectl.namespace, "--wait=false")
    release = threading.Timer(
        3.0, lambda: kubectl.patch("configmap", "held", {"metadata": {"finalizers": None}}, "merge")
    )
    try:
        assert kubectl.namespace_terminating()
        release.start()
        started = time.monotonic()
        assert kubectl.await_namespace_deleted(timeout_s=180)
        assert time.monotonic() - started >= 2.5
        assert not kubectl.exists("namespace", kubectl.namespace)
        assert not kubectl.await_namespace_deleted()  # nothing to wait for any more
    finally:
        release.cancel()
        kubectl.run(
            "patch",
            "configmap",
            "held",
            "--type",
            "merge",
            "--patch",
            '{"metadata": {"finalizers": null}}',
            check=False,
        )


def test_logs_come_from_the_deployment(platform) -> None:
    settings, _runtime = platform
    result = run_cli(settings, "logs", "serving", "--lines", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    unknown = run_cli(settings, "logs", "nonsense")
    assert unknown.returncode != 0 and "No Deployment named" in unknown.stderr
