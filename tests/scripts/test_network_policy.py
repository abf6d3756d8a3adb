"""scripts/ci/network_policy.py, the NetworkPolicy enforcer of CI's node: its rendering of
policies, pods and namespaces into iptables rules, judged by what the rules do to a new
connection (a small interpreter of the rules it writes), not by their text. That the kernel
applies them is proven on the cluster (tests/k8s/test_cluster_e2e.py)."""

from __future__ import annotations

import ipaddress

import yaml

from platform_core.settings import REPO_ROOT
from tests.scripts import ci_script

netpol = ci_script("network_policy")

BRIDGE = "172.17.0.0/16"
NAMESPACES = [
    {"metadata": {"name": "mlops-lab"}},
    {"metadata": {"name": "default"}},
    {"metadata": {"name": "monitoring", "labels": {"team": "sre"}}},
]


def pod(ip: str, name: str, namespace: str = "mlops-lab", ports: dict | None = None, **labels):
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "ports": [{"name": n, "containerPort": p} for n, p in (ports or {}).items()],
                }
            ]
        },
        "status": {"podIP": ip, "phase": "Running"},
    }


def policy(name: str, spec: dict, namespace: str = "mlops-lab") -> dict:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def by_app(*apps: str) -> dict:
    return {"matchExpressions": [{"key": "app", "operator": "In", "values": list(apps)}]}


MLFLOW = pod("172.17.0.2", "mlflow", ports={"http": 5000}, app="mlflow")
SERVING = pod("172.17.0.3", "serving", ports={"http": 3000}, app="serving")
FLOWS = pod("172.17.0.4", "flows", ports={"http": 8003}, app="flows")
POSTGRES = pod("172.17.0.5", "postgres", ports={"postgres": 5432}, app="postgres")
OUTSIDER = pod("172.17.0.6", "outsider", namespace="default", app="curl")
PROMETHEUS = pod("172.17.0.7", "prometheus", namespace="monitoring", app="prometheus")
PODS = [MLFLOW, SERVING, FLOWS, POSTGRES, OUTSIDER, PROMETHEUS]
INTERNET = "93.184.215.14"


# ---- a small interpreter of the rules the enforcer writes -----------------------------------


def _in(address: str, cidr: str) -> bool:
    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr, strict=False)


def _matches(words: list[str], packet: dict) -> bool:
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("-s", "-d"):
            if not _in(packet["src" if word == "-s" else "dst"], words[i + 1]):
                return False
            i += 2
        elif word == "-p":
            if words[i + 1] != packet["proto"]:
                return False
            i += 2
        elif word == "--dport":
            first, _, last = words[i + 1].partition(":")
            if not int(first) <= packet["port"] <= int(last or first):
                return False
            i += 2
        elif word == "-m" and words[i + 1] == "mark":
            negate = words[i + 2] == "!"
            value, mask = (int(x, 16) for x in words[i + 3 + negate].split("/"))
            if ((packet["mark"] & mask) == value) == negate:
                return False
            i += 4 + negate
        elif word == "-m" and words[i + 1] == "conntrack":
            return False  # a new connection: neither established nor related
        else:
            i += 1  # "-m tcp" and the like
    return True


def _run(rules: dict[str, list[str]], chain: str, packet: dict) -> str | None:
    """ACCEPT, DROP or None (fell off the chain or RETURNed)."""
    for rule in rules[chain]:
        words = rule.split()
        j = words.index("-j")
        if not _matches(words[:j], packet):
            continue
        target = words[j + 1]
        if target == "MARK":
            value, mask = (int(x, 16) for x in words[j + 3].split("/"))
            packet["mark"] = (packet["mark"] & ~mask) | value
        elif target == "RETURN":
            return None
        elif target in ("ACCEPT", "DROP"):
            return target
        else:
            verdict = _run(rules, target, packet)
            if verdict:
                return verdict
    return None


def allowed(rules, src: dict | str, dst: dict | str, port: int, proto: str = "tcp") -> bool:
    ip = lambda end: end if isinstance(end, str) else end["status"]["podIP"]  # noqa: E731
    packet = {"src": ip(src), "dst": ip(dst), "proto": proto, "port": port, "mark": 0}
    return _run(rules, netpol.CHAIN, packet) != "DROP"


def render(*policies: dict, pods=PODS, namespaces=NAMESPACES):
    return netpol.render(list(policies), pods, namespaces, BRIDGE)


# ---- selectors ---------------------------------------------------------------------------------


def test_label_selectors_follow_the_api() -> None:
    labels = {"app": "serving", "tier": "web"}
    assert netpol.selects({}, labels) and netpol.selects(None, {})
    assert netpol.selects({"matchLabels": {"app": "serving"}}, labels)
    assert not netpol.selects({"matchLabels": {"app": "mlflow"}}, labels)
    expression = lambda op, *values: {  # noqa: E731
        "matchExpressions": [{"key": "tier", "operator": op, "values": list(values)}]
    }
    assert netpol.selects(expression("In", "web", "db"), labels)
    assert not netpol.selects(expression("In", "db"), labels)
    assert netpol.selects(expression("NotIn", "db"), labels)
    assert netpol.selects(expression("NotIn", "db"), {"app": "x"})  # no such label: not in
    assert not netpol.selects(expression("NotIn", "web"), labels)
    assert netpol.selects(expression("Exists"), labels)
    assert not netpol.selects(expression("DoesNotExist"), labels)


# ---- isolation ---------------------------------------------------------------------------------


def test_without_policies_everything_passes_and_no_pod_has_a_chain() -> None:
    rules = render()
    assert set(rules) == {netpol.CHAIN}
    assert allowed(rules, OUTSIDER, MLFLOW, 5000) and allowed(rules, SERVING, INTERNET, 443)


def test_only_selected_pods_are_isolated() -> None:
    rules = render(policy("deny-mlflow", {"podSelector": {"matchLabels": {"app": "mlflow"}}}))
    assert not allowed(rules, SERVING, MLFLOW, 5000)
    assert allowed(rules, SERVING, FLOWS, 8003)
    assert allowed(rules, MLFLOW, POSTGRES, 5432)  # an ingress policy leaves egress open


def test_a_policy_of_another_namespace_selects_none_of_this_ones_pods() -> None:
    rules = render(policy("deny-all", {"podSelector": {}}, namespace="default"))
    assert allowed(rules, SERVING, MLFLOW, 5000)
    assert not allowed(rules, SERVING, OUTSIDER, 80)


def test_a_pod_selector_peer_means_pods_of_the_policys_namespace() -> None:
    rules = render(
        policy(
            "mlflow-from-serving",
            {
                "podSelector": {"matchLabels": {"app": "mlflow"}},
                "ingress": [{"from": [{"podSelector": {}}]}],
            },
        )
    )
    assert allowed(rules, SERVING, MLFLOW, 5000)
    assert not allowed(rules, OUTSIDER, MLFLOW, 5000)


def test_namespace_selector_alone_and_together_with_a_pod_selector() -> None:
    by_name = {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    alone = render(
        policy(
            "from-monitoring",
            {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": by_name}]}]},
        )
    )
    assert allowed(alone, PROMETHEUS, SERVING, 3000)
    assert not allowed(alone, OUTSIDER, SERVING, 3000)
    assert not allowed(alone, FLOWS, SERVING, 3000)  # the policy's own namespace is not selected
    both = render(
        policy(
            "from-monitorings-curl",
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {"matchLabels": {"team": "sre"}},
                                "podSelector": {"matchLabels": {"app": "curl"}},
                            }
                        ]
                    }
                ],
            },
        )
    )
    assert not allowed(both, PROMETHEUS, SERVING, 3000)  # right namespace, wrong pod
    assert not allowed(both, OUTSIDER, SERVING, 3000)  # right pod, wrong namespace


def test_ip_blocks_and_their_excepts() -> None:
    rules = render(
        policy(
            "serving-egress",
            {
                "podSelector": {"matchLabels": {"app": "serving"}},
                "policyTypes": ["Egress"],
                "egress": [
                    {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["172.17.0.0/16"]}}]}
                ],
            },
        )
    )
    assert allowed(rules, SERVING, INTERNET, 443)
    assert not allowed(rules, SERVING, MLFLOW, 5000)


def test_ports_by_number_range_name_and_protocol() -> None:
    def only(ports: list[dict]):
        return render(
            policy(
                "p",
                {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}], "ports": ports}]},
            )
        )

    by_name = only([{"port": "http"}])
    # A name is each destination pod's own port: 5000 on MLflow, 3000 on serving.
    assert allowed(by_name, SERVING, MLFLOW, 5000) and not allowed(by_name, SERVING, MLFLOW, 3000)
    assert allowed(by_name, MLFLOW, SERVING, 3000)
    assert not allowed(by_name, MLFLOW, POSTGRES, 5432)  # no port of that name
    by_number = only([{"port": 5000, "protocol": "TCP"}])
    assert allowed(by_number, SERVING, MLFLOW, 5000)
    assert not allowed(by_number, SERVING, MLFLOW, 5000, proto="udp")
    ranged = only([{"port": 5000, "endPort": 5010}])
    assert allowed(ranged, SERVING, MLFLOW, 5005) and not allowed(ranged, SERVING, MLFLOW, 5011)


def test_empty_from_allows_every_source_and_an_empty_rule_list_none() -> None:
    everyone = render(policy("open", {"podSelector": {}, "ingress": [{}]}))
    assert allowed(everyone, OUTSIDER, MLFLOW, 5000)
    nobody = render(policy("closed", {"podSelector": {}, "ingress": []}))
    assert not allowed(nobody, FLOWS, MLFLOW, 5000)


def test_policies_add_up_and_both_ends_must_consent() -> None:
    only_flows = policy(
        "mlflow-from-flows",
        {
            "podSelector": {"matchLabels": {"app": "mlflow"}},
            "ingress": [{"from": [{"podSelector": by_app("flows")}], "ports": [{"port": "http"}]}],
        },
    )
    assert not allowed(render(only_flows), SERVING, MLFLOW, 5000)
    also_serving = policy(
        "mlflow-from-serving",
        {
            "podSelector": {"matchLabels": {"app": "mlflow"}},
            "ingress": [{"from": [{"podSelector": by_app("serving")}]}],
        },
    )
    assert allowed(render(only_flows, also_serving), SERVING, MLFLOW, 5000)
    serving_egress = policy(
        "serving-egress",
        {
            "podSelector": {"matchLabels": {"app": "serving"}},
            "policyTypes": ["Egress"],
            "egress": [
                {"ports": [{"port": 53, "protocol": "UDP"}]},
                {"to": [{"podSelector": by_app("postgres")}], "ports": [{"port": "postgres"}]},
            ],
        },
    )
    rules = render(only_flows, also_serving, serving_egress)
    assert not allowed(rules, SERVING, MLFLOW, 5000)  # MLflow lets it in, serving may not leave
    assert allowed(rules, SERVING, POSTGRES, 5432)
    assert allowed(rules, SERVING, INTERNET, 53, proto="udp")
    assert not allowed(rules, SERVING, INTERNET, 53)


def test_a_named_port_towards_anywhere_means_the_pods_with_that_port() -> None:
    rules = render(
        policy(
            "egress-http",
            {
                "podSelector": {"matchLabels": {"app": "flows"}},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"port": "http"}, {"port": 443}]}],
            },
        )
    )
    assert allowed(rules, FLOWS, MLFLOW, 5000) and allowed(rules, FLOWS, SERVING, 3000)
    assert not allowed(rules, FLOWS, MLFLOW, 3000)
    assert allowed(rules, FLOWS, INTERNET, 443) and not allowed(rules, FLOWS, INTERNET, 80)


def test_pods_off_the_bridge_or_finished_are_left_out() -> None:
    host = pod("10.0.0.9", "on-host", app="mlflow")
    host["spec"]["hostNetwork"] = True
    done = pod("172.17.0.9", "job", app="mlflow")
    done["status"]["phase"] = "Succeeded"
    rules = render(policy("deny", {"podSelector": {}}), pods=[host, done, SERVING])
    assert set(rules) == {netpol.CHAIN, netpol.chain_name(SERVING, "Ingress")}


def test_an_address_belongs_to_the_newest_pod_that_reports_it() -> None:
    """A terminating pod keeps its podIP in the API for a while after its sandbox is gone, and
    Docker hands that address to the next pod: the newcomer is judged as itself, not as the pod
    that held the address before (a neighbour got in to PostgreSQL as a serving pod did)."""
    gone = pod("172.17.0.6", "serving-old", app="serving")
    gone["metadata"]["creationTimestamp"] = "2026-12-06T10:00:00Z"
    gone["metadata"]["deletionTimestamp"] = "2026-12-06T10:05:00Z"
    neighbour = pod("172.17.0.6", "neighbour", namespace="default", app="curl")
    neighbour["metadata"]["creationTimestamp"] = "2026-12-06T10:05:20Z"
    from_serving = policy(
        "postgres-from-serving",
        {
            "podSelector": by_app("postgres"),
            "ingress": [{"from": [{"podSelector": by_app("serving")}]}],
        },
    )
    for pods in ([gone, neighbour, POSTGRES], [neighbour, gone, POSTGRES]):
        rules = render(from_serving, pods=pods)
        assert not allowed(rules, neighbour, POSTGRES, 5432)
    rules = render(from_serving, pods=[gone, POSTGRES])  # not yet reused: still serving's
    assert allowed(rules, gone, POSTGRES, 5432)


def test_an_address_whose_sandbox_is_gone_grants_nothing() -> None:
    """The API can show a pod with an address its sandbox gave up (terminating or not), and
    Docker gives that address to the next pod before the API reports the newcomer's: a neighbour
    just started got in to PostgreSQL as the serving pod it replaced (lab 26's check on CI's
    node). Docker's word on who holds an address now settles it."""
    old = pod("172.17.0.6", "serving-old", app="serving")
    from_serving = policy(
        "postgres-from-serving",
        {
            "podSelector": by_app("postgres"),
            "ingress": [{"from": [{"podSelector": by_app("serving")}]}],
        },
    )
    postgres = ("mlops-lab", "postgres")
    handed_on = {"172.17.0.6": ("default", "neighbour"), "172.17.0.5": postgres}
    rules = netpol.render([from_serving], [old, POSTGRES], NAMESPACES, BRIDGE, handed_on)
    assert not allowed(rules, "172.17.0.6", POSTGRES, 5432)
    freed = {"172.17.0.5": postgres}  # given up and not yet given to anyone
    rules = netpol.render([from_serving], [old, POSTGRES], NAMESPACES, BRIDGE, freed)
    assert not allowed(rules, "172.17.0.6", POSTGRES, 5432)
    held = {"172.17.0.6": ("mlops-lab", "serving-old"), "172.17.0.5": postgres}
    rules = netpol.render([from_serving], [old, POSTGRES], NAMESPACES, BRIDGE, held)
    assert allowed(rules, old, POSTGRES, 5432)
    # A pod Docker does not show yet on its side is not isolated: its own chain waits for it.
    rules = netpol.render([from_serving], [old, POSTGRES], NAMESPACES, BRIDGE, {})
    assert set(rules) == {netpol.CHAIN}


def test_dockers_bridge_names_the_pod_behind_each_sandbox_address() -> None:
    names = {
        "172.17.0.6": "k8s_POD_serving-7dfcb9768c-pk2m6_mlops-lab_e5c1c078_0",
        "172.17.0.9": "k8s_POD_mlops-lab-neighbour_default_651b2097_1",
        "172.17.0.2": "registry",  # not a pod's
    }
    containers = {
        f"id{n}": {"Name": name, "IPv4Address": f"{ip}/16"}
        for n, (ip, name) in enumerate(names.items())
    }
    assert netpol.wire_holders(containers) == {
        "172.17.0.6": ("mlops-lab", "serving-7dfcb9768c-pk2m6"),
        "172.17.0.9": ("default", "mlops-lab-neighbour"),
    }
    assert netpol.sandbox_pod("k8s_serving_serving-x_mlops-lab_uid_0") is None  # an app container


def test_the_bases_policies_on_the_platform() -> None:
    """k8s/base/networkpolicies.yaml as CI's node now enforces it: the platform's pods reach each
    other's HTTP ports, the database only from its clients, nothing from another namespace."""
    documents = yaml.safe_load_all((REPO_ROOT / "k8s/base/networkpolicies.yaml").read_text())
    base = [{**d, "metadata": {**d["metadata"], "namespace": "mlops-lab"}} for d in documents]
    labelled = [
        pod(p["status"]["podIP"], p["metadata"]["name"], p["metadata"]["namespace"],
            {c["name"]: c["containerPort"] for c in p["spec"]["containers"][0]["ports"]},
            **{"app.kubernetes.io/name": p["metadata"]["labels"]["app"]})
        for p in PODS
    ]  # fmt: skip
    mlflow, serving, flows, postgres, outsider, prometheus = labelled
    rules = netpol.render(base, labelled, NAMESPACES, BRIDGE)
    assert allowed(rules, serving, mlflow, 5000) and allowed(rules, flows, mlflow, 5000)
    assert allowed(rules, serving, postgres, 5432)
    assert allowed(rules, prometheus, serving, 3000)  # by the name label the API sets from 1.21
    assert not allowed(rules, outsider, mlflow, 5000)
    assert not allowed(rules, outsider, postgres, 5432)
    assert not allowed(rules, serving, mlflow, 22)


def test_the_restore_input_replaces_our_chains_and_deletes_the_unused() -> None:
    rules = render(policy("deny", {"podSelector": {"matchLabels": {"app": "mlflow"}}}))
    text = netpol.restore_text(rules, stale=["MLOPS-NP-I-ac110063", netpol.CHAIN])
    lines = text.splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    assert f":{netpol.CHAIN} - [0:0]" in lines
    # Declared (emptied) before it is deleted, in the same transaction.
    assert lines.index(":MLOPS-NP-I-ac110063 - [0:0]") < lines.index("-X MLOPS-NP-I-ac110063")
    assert f"-X {netpol.CHAIN}" not in lines
    assert lines[lines.index(f"-A {netpol.CHAIN} " + rules[netpol.CHAIN][0])].endswith("ACCEPT")


def test_the_same_objects_render_the_same_rules() -> None:
    deny = policy("deny", {"podSelector": {}})
    assert render(deny) == render(deny, pods=list(reversed(PODS)))


def test_the_log_says_which_addresses_changed_hands() -> None:
    before = netpol.address_holders([SERVING, POSTGRES], BRIDGE, None)
    assert before == {"172.17.0.3": "mlops-lab/serving", "172.17.0.5": "mlops-lab/postgres"}
    after = netpol.address_holders([OUTSIDER, POSTGRES], BRIDGE, None)
    assert netpol.moves(before, before) == "no address changed hands"
    assert netpol.moves(before, after) == (
        "172.17.0.3 mlops-lab/serving -> -, 172.17.0.6 - -> default/outsider"
    )
