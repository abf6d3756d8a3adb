"""Reports of the cause, and right fixes a check must accept though they differ from the reference
fix. Nothing here needs a running platform: the CLI's progress store, amtool and YAML are real."""

from __future__ import annotations

import time

import yaml

from mlops_lab.lab_engine.catalog import find
from mlops_lab.lab_engine.kit import CAUSE, cause_reported
from mlops_lab.lab_engine.progress import IN_PROGRESS, LabProgress, ProgressStore
from monitoring import assets, configs
from platform_core.settings import Settings
from tests.support import run_cli


def test_a_cause_must_be_reported_and_name_what_is_at_fault() -> None:
    missing = cause_reported("05", {}, "ALIAS_POLL_INTERVAL")
    vague = cause_reported("05", {CAUSE: "a bad config"}, "ALIAS_POLL_INTERVAL")
    named = cause_reported("05", {CAUSE: "alias_poll_interval_s was '5s'"}, "ALIAS_POLL_INTERVAL")

    assert not missing.passed and 'lab answer 05 cause="..."' in missing.detail
    assert not vague.passed and "does not name" in vague.detail
    assert named.passed


def test_lab_answer_records_a_cause_and_names_a_malformed_pair(
    unstarted_settings: Settings,
) -> None:
    store = ProgressStore(unstarted_settings.learner_home)
    store.save("06", LabProgress(status=IN_PROGRESS, started_at=time.time()))

    recorded = run_cli(unstarted_settings, "lab", "answer", "06", "cause=port 1234 is wrong")
    malformed = run_cli(unstarted_settings, "lab", "answer", "06", "the port")

    assert recorded.returncode == 0, recorded.stderr
    assert store.get("06").answers == {CAUSE: "port 1234 is wrong"}
    assert malformed.returncode != 0
    assert "'the port' is not KEY=VALUE" in malformed.stderr
    assert 'cause="' in malformed.stderr


def test_oncall_answer_needs_a_round(unstarted_settings: Settings) -> None:
    answered = run_cli(unstarted_settings, "oncall", "answer", "cause=something")

    assert answered.returncode != 0
    assert "oncall start" in answered.stderr


def _alertmanager_config(**route_changes) -> dict:
    config = configs.alertmanager_config(assets.default_settings())
    config["route"].update(route_changes)
    return config


def _routes(config: dict) -> str:
    lab = find("11").module
    return lab.routed_to(yaml.safe_dump(config), action="retrain", alertname="DataDriftDetected")


def test_lab_11_accepts_a_fan_out_route_and_a_renamed_receiver() -> None:
    lab = find("11").module
    fan_out = _alertmanager_config(
        routes=[
            {"receiver": "log", "matchers": ['action="retrain"'], "continue": True},
            {"receiver": "retrain", "matchers": ['action="retrain"']},
        ]
    )
    renamed = _alertmanager_config(
        routes=[{"receiver": "ml-retrain", "matchers": ['action="retrain"']}]
    )
    renamed["receivers"] = [
        {**r, "name": "ml-retrain"} if r["name"] == "retrain" else r for r in renamed["receivers"]
    ]
    misspelled = _alertmanager_config(
        routes=[{"receiver": "retrain", "matchers": ['action="retrian"']}]
    )

    assert _routes(fan_out) == "log,retrain"
    assert lab.reaches_retrain(_routes(fan_out), yaml.safe_dump(fan_out))
    assert lab.reaches_retrain(_routes(renamed), yaml.safe_dump(renamed))
    assert not lab.reaches_retrain(_routes(misspelled), yaml.safe_dump(misspelled))


def test_lab_07_reads_the_gate_margin_from_its_own_tag_not_its_prose() -> None:
    from pipelines import gate
    from pipelines.registry import TAG_GATE_MARGIN, TAG_GATE_REASON

    decision = gate.decide(0.81, 0.6, 0.01, champion_version="3", champion_auc=0.75)
    lab = find("07").module

    assert decision.promote and decision.margin == 0.01
    reworded = {TAG_GATE_REASON: "wins over the champion", TAG_GATE_MARGIN: f"{decision.margin:g}"}
    assert lab._gate_margin(reworded) == 0.01
    assert lab._gate_margin({TAG_GATE_REASON: decision.reason}) == -1.0
    assert gate.decide(0.81, 0.6, 0.01).margin is None  # a first model beats no one


def test_lab_15_asks_for_a_probe_that_waits_for_the_model() -> None:
    lab = find("15").module
    container = {"name": "serving", "ports": [{"name": "http", "containerPort": 3000}]}

    def asks(**get) -> bool:
        return lab.asks_readiness({"httpGet": get}, container)

    # Serving's readiness, however the port is named, the scheme left to its default or not.
    assert asks(path="/readyz", port="http")
    assert asks(path="/readyz", port=3000, scheme="HTTP")
    # What each variant's release asks, and the shortcuts that pass while no model is loaded.
    for variant in lab.VARIANTS:
        assert not lab.asks_readiness({"httpGet": lab._wrong_get(variant)}, container), variant
    assert not asks(path="/livez", port="http")
    assert not lab.asks_readiness({"exec": {"command": ["true"]}}, container)
    assert not lab.asks_readiness({"tcpSocket": {"port": "http"}}, container)
    assert not lab.asks_readiness(None, container)
    assert lab._asks({"tcpSocket": {"port": "http"}}).startswith("tcpSocket")
    assert lab._asks(None) == "nothing"


def test_lab_14_wants_a_sized_ceiling_not_none_and_not_the_sky() -> None:
    problems = find("14").module.sizing_problems
    mib = 2**20
    request, manifest = 512 * mib, 1536 * mib

    assert problems(1536 * mib, 600 * mib, request, manifest) == []
    assert problems(1024 * mib, None, request, manifest) == []  # nothing measured: the request
    # The guard rail gone:
    assert "no memory limit" in problems(None, 600 * mib, request, manifest)[0]
    assert "headroom" in problems(700 * mib, 600 * mib, request, manifest)[0]  # 1.1x is a guess
    assert "request" in problems(256 * mib, None, request, manifest)[0]
    assert "guards nothing" in problems(64 * 1024 * mib, 600 * mib, request, manifest)[0]


def test_lab_14_lets_cpu_go_unlimited_but_not_starved() -> None:
    lab = find("14").module
    assert lab.cpu_cores("250m") == 0.25 and lab.cpu_cores("1") == 1.0
    assert lab.cpu_cores("0.5") == 0.5 and lab.cpu_cores(None) is None

    assert lab.cpu_problems(None, 0.25) == []  # no CPU limit: a choice, not a missing guard rail
    assert lab.cpu_problems(1.0, 0.25) == []
    assert lab.cpu_problems(0.25, 0.25) == []
    assert "below the 250m" in lab.cpu_problems(0.02, 0.25)[0]  # the variant's 20m


def test_lab_25_counts_throttling_against_the_burst_not_the_minutes_around_it() -> None:
    """The shares of a CI run whose check passed a 200m ceiling: the readings around the burst
    took seconds each on a loaded machine, and probes and scrapes counted periods in them that
    nothing throttled."""
    shares = find("25").module.throttled_shares
    before = {"pod": {"nr_periods": 1_000, "nr_throttled": 300}}
    # 2.4 s of calls at a 200m ceiling: throttled in each of their 24 periods; 100 more periods
    # counted while `kubectl exec` read the counters and in the pauses.
    held = {"pod": {"nr_periods": 1_124, "nr_throttled": 324}}
    assert shares(before, held, busy_s=2.4)["pod"] == 1.0
    # The same calls at a 1-CPU ceiling: 0.6 s, throttled once; none with no ceiling at all.
    fitted = {"pod": {"nr_periods": 1_090, "nr_throttled": 301}}
    assert shares(before, fitted, busy_s=0.6)["pod"] < 0.25
    assert shares({"pod": {}}, {"pod": {"usage_usec": 5}}, busy_s=0.6)["pod"] == 0.0


def test_lab_16_accepts_a_fixed_build_from_the_node_or_from_a_registry() -> None:
    pinned = find("16").module.pinned

    assert pinned("mlops-lab/serving:1a2b3c", "IfNotPresent")
    assert pinned("localhost:5001/mlops-lab/serving:1a2b3c", "Always")  # a local registry
    assert pinned("registry.example.com/serving@sha256:" + "0" * 64, "Always")
    assert not pinned("mlops-lab/serving:latest", "IfNotPresent")  # a moving tag
    assert not pinned("mlops-lab/serving:1a2b3c", "Always")  # no registry to ask
    assert not pinned("mlops-lab/serving", "IfNotPresent")
