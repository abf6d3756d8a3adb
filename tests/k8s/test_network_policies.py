"""Who reaches whom under each rendering's NetworkPolicies, and who reaches the cloud overlay's
Ingress: the policies are evaluated here as the API defines them (a pod selected by a policy of a
direction accepts only what some rule of such a policy allows; rules add up), on connections
between the platform's pods, cluster DNS, Prometheus, a pod of another namespace, the node and
addresses outside the cluster. Sources are the addresses a connection had when it reached the
node, before kube-proxy's masquerade, which is where kindnetd's kube-network-policies judges them.

CI's cluster enforces the base's NetworkPolicies with scripts/ci/network_policy.py, but it runs
neither the egress component nor the cloud overlay, and kind's enforcement is not run in CI: these
checks are where every rendering's policies are tested."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from mlops_lab.runtime.kube.assets import K8S_DIR, MONITORING_NAMESPACE, NAMESPACE
from platform_core.settings import REPO_ROOT
from tests.k8s.conftest import VARIANTS, named, of_kind

# Renderings for clusters with DNS in kube-system: their pods' egress is limited. The base is
# every cluster's starting point and CI's node answers DNS itself (dnsmasq on its bridge), so
# neither limits egress.
EGRESS_LIMITED = ("kind", "cloud")
EGRESS_OPEN = ("base", "ci")
# kind's default podSubnet: infra/terraform/cluster does not change it.
KIND_POD_SUBNET = "10.244.0.0/16"
# What holds a database URL in Secret mlops-lab-secrets.
DATABASE_CLIENTS = ("mlflow", "prefect", "flows", "serving", "drift-monitor")
INGRESS_AUTH = "nginx.ingress.kubernetes.io/auth-"


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (with a namespace) or an address outside the pod network."""

    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)  # the pod's named container ports


COREDNS = Endpoint("10.244.0.2", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
PROMETHEUS = Endpoint(
    "10.244.0.3", MONITORING_NAMESPACE, {"app.kubernetes.io/name": "prometheus"}, {"web": 9090}
)
OTHER_POD = Endpoint("10.244.0.4", "default", {"app": "curl"})
# The kind network's gateway: Docker's port proxy connects from it to the node's NodePort. Docker
# picks the subnet, so two of its usual ones.
KIND_HOSTS = (Endpoint("172.18.0.1"), Endpoint("192.168.49.1"))
CI_NODE_DNS = Endpoint("172.17.0.1")  # dnsmasq on CI's docker0 bridge (scripts/ci/k8s-up.sh)
METADATA = Endpoint("169.254.169.254")  # every cloud's instance metadata and credentials
INTERNET = Endpoint("93.184.215.14")
OBJECT_STORE = Endpoint("52.216.8.10")  # an S3 address
MANAGED_DATABASE = Endpoint("10.20.0.5")


def platform_pods(documents: list[dict]) -> dict[str, Endpoint]:
    """Each Deployment's pod, by its app.kubernetes.io/name, at an address in kind's pod subnet."""
    pods = {}
    for index, deployment in enumerate(of_kind(documents, "Deployment")):
        template = deployment["spec"]["template"]
        labels = template["metadata"]["labels"]
        ports = {
            port["name"]: port["containerPort"]
            for container in template["spec"]["containers"]
            for port in container.get("ports", [])
        }
        pods[labels["app.kubernetes.io/name"]] = Endpoint(
            f"10.244.1.{index + 1}", NAMESPACE, labels, ports
        )
    assert pods, "no Deployment rendered"
    return pods


def _selects(selector: Mapping, labels: Mapping[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present, value = expression["key"] in labels, labels.get(expression["key"])
        matched = {
            "In": present and value in expression.get("values", []),
            "NotIn": value not in expression.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[expression["operator"]]
        if not matched:
            return False
    return True


def _peer_matches(peer: Mapping, endpoint: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if endpoint.namespace is None:
        return False
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": endpoint.namespace}
        if not _selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif endpoint.namespace != policy_namespace:
        return False
    return _selects(peer.get("podSelector", {}), endpoint.labels)


def _port_matches(ports: list | None, port: int, protocol: str, target: Endpoint) -> bool:
    if not ports:
        return True
    for rule in ports:
        if rule.get("protocol", "TCP") != protocol:
            continue
        wanted = rule.get("port")
        if wanted is None or wanted == port or target.ports.get(str(wanted)) == port:
            return True
        if isinstance(wanted, int) and wanted <= port <= rule.get("endPort", wanted):
            return True
    return False


def _admits(
    policies: list[dict],
    direction: str,
    subject: Endpoint,
    peer: Endpoint,
    port: int,
    protocol: str,
) -> bool:
    """Whether ``subject``'s policies of ``direction`` let it talk with ``peer``."""
    if subject.namespace is None:
        return True  # not a pod: no policy applies to it
    selecting = []
    for policy in policies:
        spec = policy["spec"]
        types = spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]
        if (
            policy["metadata"]["namespace"] == subject.namespace
            and direction in types
            and _selects(spec["podSelector"], subject.labels)
        ):
            selecting.append(policy)
    if not selecting:
        return True
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    target = peer if direction == "Egress" else subject
    for policy in selecting:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            if _port_matches(rule.get("ports"), port, protocol, target) and (
                not peers
                or any(_peer_matches(p, peer, policy["metadata"]["namespace"]) for p in peers)
            ):
                return True
    return False


def connects(
    documents: list[dict], source: Endpoint, target: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether a connection from ``source`` to ``target``'s ``port`` gets through both ends."""
    policies = of_kind(documents, "NetworkPolicy")
    return _admits(policies, "Egress", source, target, port, protocol) and _admits(
        policies, "Ingress", target, source, port, protocol
    )


def _http_pods(documents: list[dict]) -> dict[str, Endpoint]:
    return {name: pod for name, pod in platform_pods(documents).items() if "http" in pod.ports}


def _callers(documents: list[dict], target: Endpoint, port: int, protocol: str = "TCP") -> set:
    """The platform's pods that reach ``target``'s ``port``."""
    return {
        name
        for name, pod in platform_pods(documents).items()
        if connects(documents, pod, target, port, protocol)
    }


def test_every_rendering_decides_whether_it_limits_egress(rendered) -> None:
    """A new overlay has to choose: limited (DNS in kube-system) or open, as CI's must be."""
    assert set(VARIANTS) == {*EGRESS_LIMITED, *EGRESS_OPEN}
    for variant in VARIANTS:
        limited = any(
            "Egress" in policy["spec"].get("policyTypes", [])
            for policy in of_kind(rendered[variant], "NetworkPolicy")
        )
        assert limited == (variant in EGRESS_LIMITED), variant


def test_on_ci_pods_reach_the_dns_the_node_serves(rendered) -> None:
    documents = rendered["ci"]
    assert _callers(documents, CI_NODE_DNS, 53, "UDP") == set(platform_pods(documents))


@pytest.mark.parametrize("variant", EGRESS_LIMITED)
def test_no_platform_pod_reaches_the_cloud_metadata_endpoint(rendered, variant) -> None:
    for port in (80, 443):
        assert not _callers(rendered[variant], METADATA, port), port


@pytest.mark.parametrize("variant", EGRESS_LIMITED)
def test_platform_pods_resolve_names_through_cluster_dns(rendered, variant) -> None:
    everyone = set(platform_pods(rendered[variant]))
    for protocol in ("UDP", "TCP"):
        assert _callers(rendered[variant], COREDNS, 53, protocol) == everyone, protocol


@pytest.mark.parametrize("variant", EGRESS_LIMITED)
def test_platform_pods_reach_each_other_and_prometheus(rendered, variant) -> None:
    documents = rendered[variant]
    pods = platform_pods(documents)
    for name, pod in _http_pods(documents).items():
        assert _callers(documents, pod, pod.ports["http"]) == set(pods), name
    assert _callers(documents, PROMETHEUS, 9090) == set(pods)
    if "postgres" in pods:
        assert _callers(documents, pods["postgres"], 5432) == set(DATABASE_CLIENTS)


@pytest.mark.parametrize("variant", EGRESS_LIMITED)
def test_platform_pods_reach_no_other_namespace_or_the_internet(rendered, variant) -> None:
    documents = rendered[variant]
    assert not _callers(documents, OTHER_POD, 8080)
    assert not _callers(documents, INTERNET, 80)
    if variant == "kind":
        assert not _callers(documents, INTERNET, 443)


def test_on_cloud_only_mlflow_reaches_the_object_store_and_only_clients_the_database(
    rendered,
) -> None:
    documents = rendered["cloud"]
    assert _callers(documents, OBJECT_STORE, 443) == {"mlflow"}
    assert _callers(documents, MANAGED_DATABASE, 5432) == set(DATABASE_CLIENTS)


def test_kind_node_ports_admit_the_host_but_no_pod_of_another_namespace(rendered) -> None:
    """A pod elsewhere in the cluster calling a NodePort keeps its pod address; the host's
    browser and CLI arrive from the kind network's gateway."""
    documents = rendered["kind"]
    for name, pod in _http_pods(documents).items():
        port = pod.ports["http"]
        refused = [host.ip for host in KIND_HOSTS if not connects(documents, host, pod, port)]
        assert not refused, f"{name} refuses the host at {refused}"
        assert not connects(documents, OTHER_POD, pod, port), f"{name} admits another namespace"


def test_kind_node_port_policy_leaves_out_the_clusters_pod_subnet(rendered) -> None:
    policy = named(rendered["kind"], "NetworkPolicy", "http-from-node-ports")
    blocks = [peer["ipBlock"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    assert blocks == [{"cidr": "0.0.0.0/0", "except": [KIND_POD_SUBNET]}]
    cluster = (REPO_ROOT / "infra" / "terraform" / "cluster" / "main.tf").read_text()
    assert not re.search(r"\bpod_subnet\b", cluster), "the kind cluster sets its own pod subnet"


def _ingresses(rendered) -> list[tuple[str, dict]]:
    return [(variant, doc) for variant in VARIANTS for doc in of_kind(rendered[variant], "Ingress")]


def test_every_ingress_requires_authentication(rendered) -> None:
    """ingress-nginx's basic auth: other controllers ignore the annotations, so the class is
    checked too."""
    ingresses = _ingresses(rendered)
    assert ingresses, "no rendering has an Ingress"
    for variant, ingress in ingresses:
        annotations = ingress["metadata"].get("annotations", {})
        where = f"{variant}: Ingress {ingress['metadata']['name']}"
        assert ingress["spec"]["ingressClassName"] == "nginx", where
        assert annotations.get(f"{INGRESS_AUTH}type") == "basic", where
        assert annotations.get(f"{INGRESS_AUTH}secret"), where
        assert annotations.get(f"{INGRESS_AUTH}realm"), where


def test_ingress_auth_secret_is_the_one_k8s_readme_creates(rendered) -> None:
    readme = (K8S_DIR / "README.md").read_text()
    for variant, ingress in _ingresses(rendered):
        secret = ingress["metadata"]["annotations"][f"{INGRESS_AUTH}secret"]
        assert f"create secret generic {secret} " in readme, (variant, secret)
