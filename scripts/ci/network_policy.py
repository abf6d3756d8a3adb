"""NetworkPolicy enforcement for the CI node: the API's policies as iptables rules on the bridge.

CI's node runs its pods as Docker containers on the default docker0 bridge (dockershim), a
network that accepts NetworkPolicies and enforces none. So scripts/ci/k8s-up.sh runs this loop:
every second it lists NetworkPolicies, Pods and Namespaces from the API server and renders them
as one iptables chain, MLOPS-NETPOL, jumped to first from FORWARD. The chain follows the API's
semantics for pods with an address on the bridge:

- a pod selected by some policy whose policyTypes name a direction is isolated in that
  direction: only what a rule of such a policy allows gets through (policies add up);
- a peer is a podSelector (in the policy's namespace), a namespaceSelector (every pod of the
  namespaces it selects), both in one peer (those pods of those namespaces), or an ipBlock with
  its except; label selectors with matchLabels and matchExpressions (In, NotIn, Exists,
  DoesNotExist); an empty `from` or `to` is every source or destination;
- ports by number (with endPort) or by name, a name resolved per destination pod from its
  containers' ports; protocol TCP unless said; an empty `ports` is every port;
- a connection needs both ends' consent: the source's egress and the destination's ingress;
  replies and related packets of an accepted connection pass (the chain's first rule), so a
  change of policy leaves established connections alone, as conntrack-based CNIs do;
- every namespace carries ``kubernetes.io/metadata.name``, as the API sets from 1.21 (this node
  runs 1.20, and the platform's policies select the monitoring namespace by it);
- an address is a pod's only while Docker says that pod's sandbox holds it: the API can show a
  pod with an address Docker has already given to the next pod, which must not pass for it.

Limits, as with most CNIs that let the node reach its pods: only forwarded traffic is filtered,
between pods or between a pod and an address beyond the node. What the node itself sends or
receives is not forwarded, so it passes: the kubelet's probes, `kubectl port-forward` and `exec`
(they enter the pod through the kubelet), and cluster DNS, which dnsmasq answers on the bridge's
own address. A Service's address is judged after kube-proxy's DNAT: the destination is the pod
behind it and the port its container port, as on a real CNI. Pods on the host network, and
pods without an address yet, are left out.

The ruleset is applied in one `iptables-restore --noflush` transaction, and only when the
rendering changed. `--remove` takes the jump and every chain away (scripts/ci/k8s-down.sh).

Standard library only: it runs with the system's python3, before and apart from the project's venv.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

# kube_api.py is beside this script, and a script's own folder is first on its import path.
from kube_api import lister, namespace_labels, selects

CHAIN = "MLOPS-NETPOL"
PREFIX = "MLOPS-NP-"  # the per-pod chains; short, as iptables allows 28 characters
# Two bits of the packet mark, outside kube-proxy's (0x4000, 0x8000): a connection's source
# allowed it to leave (EGRESS_OK), its destination allowed it in (INGRESS_OK).
EGRESS_OK = 0x10000
INGRESS_OK = 0x20000
OURS = EGRESS_OK | INGRESS_OK
ALL = None  # every address, or every port


# ---- selectors ---------------------------------------------------------------------------------


def bridge_pods(
    pods: list[dict], bridge: str, on_wire: dict[str, tuple[str, str]] | None = None
) -> list[dict]:
    """The pods this enforcer can see on the wire: an address on the bridge, not on the host's
    network, not finished. An address two pods report is the newer one's: a terminating pod
    keeps its podIP in the API a while after its sandbox is gone, and Docker gives the address
    to the next pod it starts. ``on_wire`` (Docker's word: address → namespace and name of the
    pod whose sandbox holds it) settles who holds an address now: a pod the API still shows
    with an address its sandbox gave up is left out, so the next pod given that address never
    passes for it, even before the API reports that pod's address."""
    network = ipaddress.ip_network(bridge, strict=False)
    holder: dict[str, dict] = {}
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or pod["spec"].get("hostNetwork"):
            continue
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        meta = pod["metadata"]
        if on_wire is not None and on_wire.get(ip) != (meta["namespace"], meta["name"]):
            continue
        if ipaddress.ip_address(ip) in network and (
            ip not in holder or _newness(pod) > _newness(holder[ip])
        ):
            holder[ip] = pod
    return [pod for pod in pods if holder.get((pod.get("status") or {}).get("podIP")) is pod]


def _newness(pod: dict) -> tuple[bool, str]:
    """Not terminating first, then the later creation (RFC 3339 in UTC sorts as text)."""
    meta = pod["metadata"]
    return (not meta.get("deletionTimestamp"), meta.get("creationTimestamp") or "")


def policy_types(policy: dict) -> set[str]:
    """The directions a policy isolates: its policyTypes, or as the API defaults them."""
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if "egress" in spec else {"Ingress"}


def applies_to(policy: dict, pod: dict) -> bool:
    return policy["metadata"]["namespace"] == pod["metadata"]["namespace"] and selects(
        policy["spec"].get("podSelector"), pod["metadata"].get("labels") or {}
    )


# ---- peers and ports ---------------------------------------------------------------------------


def peer_pods(peer: dict, policy_ns: str, pods: list[dict], ns_labels: dict) -> list[dict]:
    """The pods a pod/namespace peer stands for (never called for an ipBlock)."""
    pod_selector = peer.get("podSelector")
    ns_selector = peer.get("namespaceSelector")
    chosen = []
    for pod in pods:
        namespace = pod["metadata"]["namespace"]
        if ns_selector is None:
            if namespace != policy_ns:
                continue
        elif not selects(ns_selector, ns_labels.get(namespace, {})):
            continue
        if pod_selector is not None and not selects(
            pod_selector, pod["metadata"].get("labels") or {}
        ):
            continue
        chosen.append(pod)
    return chosen


def named_port(pod: dict, name: str, protocol: str) -> int | None:
    for container in pod["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None


def port_matches(ports: list[dict] | None, pod: dict | None) -> list[tuple[str, str]] | None:
    """A rule's ports as (protocol, "port" or "first:last") pairs for a destination pod (None:
    every port; empty: nothing matches, e.g. a name the pod does not have). ``pod`` None is a
    destination that is no pod: names cannot be resolved there."""
    if not ports:
        return ALL
    matched = []
    for entry in ports:
        protocol = entry.get("protocol", "TCP")
        port = entry.get("port")
        if port is None:
            matched.append((protocol, ""))
            continue
        if _is_name(entry):
            number = named_port(pod, port, protocol) if pod is not None else None
            if number is None:
                continue
        else:
            number = int(port)
        end = entry.get("endPort")
        matched.append((protocol, f"{number}:{int(end)}" if end else str(number)))
    return matched


def _is_name(entry: dict) -> bool:
    return isinstance(entry.get("port"), str) and not entry["port"].isdigit()


def _ip(pod: dict) -> str:
    return pod["status"]["podIP"] + "/32"


# ---- rules -------------------------------------------------------------------------------------


def chain_name(pod: dict, direction: str) -> str:
    """MLOPS-NP-I-ac11000c: the ingress chain of the pod at 172.17.0.12."""
    packed = ipaddress.ip_address(pod["status"]["podIP"]).packed.hex()
    return f"{PREFIX}{direction[0]}-{packed}"


def _port_args(protocol: str, port: str) -> str:
    proto = protocol.lower()
    return f"-p {proto}" + (f" -m {proto} --dport {port}" if port else "")


class Chains:
    """The ruleset being rendered: chain name → rule lines (without ``-A CHAIN``)."""

    def __init__(self) -> None:
        self.rules: dict[str, list[str]] = {CHAIN: []}

    def add(self, chain: str, rule: str) -> None:
        self.rules.setdefault(chain, []).append(rule)


def _allow(
    chains: Chains,
    chain: str,
    mark: int,
    addresses: str | None,
    excepts: list[str],
    ports: list[tuple[str, str]] | None,
    side: str,
) -> None:
    """Rules in ``chain`` that set ``mark`` for packets from/to ``addresses`` (``side`` "-s" or
    "-d"; None: any) on ``ports``. Excepts need a chain of their own: RETURN skips them."""
    set_mark = f"-j MARK --set-xmark {mark:#x}/{mark:#x}"
    target_chain = chain
    where = f"{side} {addresses} " if addresses else ""
    if excepts:
        target_chain = f"{chain}-B{sum(1 for c in chains.rules if c.startswith(chain + '-B'))}"
        chains.add(chain, f"{where}-j {target_chain}".strip())
        for excluded in excepts:
            chains.add(target_chain, f"{side} {excluded} -j RETURN")
        where = ""
    if ports is ALL:
        chains.add(target_chain, f"{where}{set_mark}")
        return
    for protocol, port in ports:
        chains.add(target_chain, f"{where}{_port_args(protocol, port)} {set_mark}")


def _peers(
    rule_peers: list[dict] | None,
    policy_ns: str,
    pods: list[dict],
    ns_labels: dict,
) -> list[tuple[str | None, list[str], dict | None]]:
    """A rule's `from`/`to` as (address or ALL, excepts, the pod behind it or None)."""
    if not rule_peers:
        return [(ALL, [], None)]
    found = []
    for peer in rule_peers:
        block = peer.get("ipBlock")
        if block:
            found.append((block["cidr"], list(block.get("except") or []), None))
            continue
        found.extend((_ip(p), [], p) for p in peer_pods(peer, policy_ns, pods, ns_labels))
    return found


def render(
    policies: list[dict],
    pods: list[dict],
    namespaces: list[dict],
    bridge: str,
    on_wire: dict[str, tuple[str, str]] | None = None,
) -> dict[str, list[str]]:
    """The whole ruleset: MLOPS-NETPOL and the chains it jumps to, rule lines per chain, in a
    stable order (same API objects, same rules). ``on_wire``: see :func:`bridge_pods`."""
    on_bridge = sorted(
        bridge_pods(pods, bridge, on_wire), key=lambda p: ipaddress.ip_address(p["status"]["podIP"])
    )
    ns_labels = namespace_labels(namespaces)
    ordered = sorted(policies, key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
    chains = Chains()
    chains.add(CHAIN, "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    chains.add(CHAIN, f"-j MARK --set-xmark 0x0/{OURS:#x}")
    egress_jumps, ingress_jumps = [], []
    for pod in on_bridge:
        relevant = [p for p in ordered if applies_to(p, pod)]
        ip = _ip(pod)
        if any("Egress" in policy_types(p) for p in relevant):
            chain = chain_name(pod, "Egress")
            chains.rules.setdefault(chain, [])
            for policy in relevant:
                if "Egress" not in policy_types(policy):
                    continue
                for rule in policy["spec"].get("egress") or []:
                    namespace = policy["metadata"]["namespace"]
                    peers = _peers(rule.get("to"), namespace, on_bridge, ns_labels)
                    for address, excepts, peer in peers:
                        # Named ports are the destination's: a pod's own, none elsewhere.
                        ports = port_matches(rule.get("ports"), peer)
                        if ports is ALL or ports:
                            _allow(chains, chain, EGRESS_OK, address, excepts, ports, "-d")
                    if not rule.get("to") and any(_is_name(e) for e in rule.get("ports") or []):
                        # A named port towards anywhere: every pod with such a port.
                        named = [e for e in rule["ports"] if _is_name(e)]
                        for other in on_bridge:
                            ports = port_matches(named, other)
                            if ports:
                                _allow(chains, chain, EGRESS_OK, _ip(other), [], ports, "-d")
            egress_jumps.append(f"-s {ip} -j {chain}")
            egress_jumps.append(f"-s {ip} -m mark ! --mark {EGRESS_OK:#x}/{EGRESS_OK:#x} -j DROP")
        if any("Ingress" in policy_types(p) for p in relevant):
            chain = chain_name(pod, "Ingress")
            chains.rules.setdefault(chain, [])
            for policy in relevant:
                if "Ingress" not in policy_types(policy):
                    continue
                for rule in policy["spec"].get("ingress") or []:
                    # Named ports are the destination's: this pod's.
                    ports = port_matches(rule.get("ports"), pod)
                    if ports is not ALL and not ports:
                        continue
                    namespace = policy["metadata"]["namespace"]
                    for address, excepts, _peer in _peers(
                        rule.get("from"), namespace, on_bridge, ns_labels
                    ):
                        _allow(chains, chain, INGRESS_OK, address, excepts, ports, "-s")
            ingress_jumps.append(f"-d {ip} -j {chain}")
            ingress_jumps.append(
                f"-d {ip} -m mark ! --mark {INGRESS_OK:#x}/{INGRESS_OK:#x} -j DROP"
            )
    for jump in egress_jumps + ingress_jumps:
        chains.add(CHAIN, jump)
    return chains.rules


def restore_text(rules: dict[str, list[str]], stale: Iterable[str] = ()) -> str:
    """iptables-restore input for the filter table (with --noflush): every chain of ours
    declared (which empties it), its rules, and the chains no longer used deleted."""
    stale = sorted(set(stale) - set(rules))
    lines = ["*filter"]
    lines += [f":{name} - [0:0]" for name in [*rules, *stale]]
    for name, chain_rules in rules.items():
        lines += [f"-A {name} {rule}" for rule in chain_rules]
    lines += [f"-X {name}" for name in stale]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


# ---- the node ----------------------------------------------------------------------------------


def sandbox_pod(container_name: str) -> tuple[str, str] | None:
    """The pod (namespace, name) of a dockershim sandbox container, named
    k8s_POD_<pod>_<namespace>_<uid>_<attempt> (neither name can hold "_"); None for another."""
    parts = container_name.lstrip("/").split("_")
    if len(parts) != 6 or parts[:2] != ["k8s", "POD"]:
        return None
    return parts[3], parts[2]


def wire_holders(containers: dict[str, dict]) -> dict[str, tuple[str, str]]:
    """Docker's bridge network's containers (`docker network inspect`'s .Containers) as
    address → the pod whose sandbox holds it."""
    holders = {}
    for container in containers.values():
        pod = sandbox_pod(container.get("Name") or "")
        address = (container.get("IPv4Address") or "").split("/")[0]
        if pod and address:
            holders[address] = pod
    return holders


def docker_holders() -> dict[str, tuple[str, str]] | None:
    """Who holds each address of Docker's default bridge now; None when Docker cannot say (the
    rules then follow the API alone)."""
    try:
        listing = subprocess.run(
            ["docker", "network", "inspect", "bridge", "--format", "{{json .Containers}}"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout  # fmt: skip
        return wire_holders(json.loads(listing or "{}") or {})
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def iptables(*args: str, check: bool = True, stdin: str | None = None) -> str:
    binary = "iptables-restore" if args and args[0] == "--noflush" else "iptables"
    result = subprocess.run(
        [binary, *args], input=stdin, capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise OSError(f"{binary} {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def our_chains() -> list[str]:
    listing = iptables("-S", check=False)
    return [
        line.split()[1]
        for line in listing.splitlines()
        if line.startswith("-N ")
        and (line.split()[1] == CHAIN or line.split()[1].startswith(PREFIX))
    ]


def apply(rules: dict[str, list[str]]) -> None:
    iptables("--noflush", stdin=restore_text(rules, our_chains()))
    ensure_jump()


def ensure_jump() -> None:
    """FORWARD's first rule jumps to the chain: Docker's and kube-proxy's rules come later, so
    none of them accepts a packet before the policies have seen it."""
    first = iptables("-S", "FORWARD", "1", check=False).strip()
    if first == f"-A FORWARD -j {CHAIN}":
        return
    while _has_jump():
        iptables("-D", "FORWARD", "-j", CHAIN)
    iptables("-I", "FORWARD", "1", "-j", CHAIN)


def _has_jump() -> bool:
    return f"-A FORWARD -j {CHAIN}" in iptables("-S", "FORWARD", check=False).splitlines()


def remove() -> None:
    """The jump first, then the chains (emptied, then deleted): the firewall as it was found."""
    while _has_jump():
        iptables("-D", "FORWARD", "-j", CHAIN, check=False)
    chains = our_chains()
    for name in chains:
        iptables("-F", name, check=False)
    for name in chains:
        iptables("-X", name, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, help="the node's work dir (pki/)")
    parser.add_argument("--api", help="API server URL")
    parser.add_argument("--bridge", default="172.17.0.0/16", help="the pods' network")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--remove", action="store_true", help="remove the rules and exit")
    args = parser.parse_args()
    if args.remove:
        remove()
        return
    if not (args.work_dir and args.api):
        parser.error("--work-dir and --api are required (unless --remove)")

    items = lister(args.work_dir, args.api)

    current: dict[str, list[str]] | None = None
    holders: dict[str, str] = {}
    while True:
        try:
            pods = items("/api/v1/pods")
            on_wire = docker_holders()  # after the pods: an address given since is not granted
            rules = render(
                items("/apis/networking.k8s.io/v1/networkpolicies"),
                pods,
                items("/api/v1/namespaces"),
                args.bridge,
                on_wire,
            )
        except OSError as error:  # the API server restarting or not up yet: keep the last rules
            _say(f"cannot list from {args.api}: {error}")
            rules, pods = current, None
        try:
            if rules is not None and rules != current:
                apply(rules)
                count = sum(len(r) for r in rules.values())
                now = address_holders(pods or [], args.bridge, on_wire)
                _say(f"{count} rules in {len(rules)} chains; {moves(holders, now)}")
                current, holders = rules, now
            else:
                ensure_jump()
        except OSError as error:
            _say(str(error))
        time.sleep(args.interval)


def _say(message: str) -> None:
    """A line of the log, stamped: a lab's check is matched to the rules of its moment."""
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    print(f"{stamp} network-policy: {message}", file=sys.stderr, flush=True)


def address_holders(
    pods: list[dict], bridge: str, on_wire: dict[str, tuple[str, str]] | None
) -> dict[str, str]:
    """Each address on the bridge and the pod the rules take it for (namespace/name)."""
    return {
        pod["status"]["podIP"]: f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        for pod in bridge_pods(pods, bridge, on_wire)
    }


def moves(before: dict[str, str], after: dict[str, str]) -> str:
    """What changed hands between two renderings: addresses gained, lost or passed on."""
    changes = [
        f"{ip} {before.get(ip, '-')} -> {after.get(ip, '-')}"
        for ip in sorted(before.keys() | after.keys(), key=ipaddress.ip_address)
        if before.get(ip) != after.get(ip)
    ]
    return ", ".join(changes) or "no address changed hands"


if __name__ == "__main__":
    main()
