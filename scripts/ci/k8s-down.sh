#!/usr/bin/env bash
# Stops what scripts/ci/k8s-up.sh started, by the PIDs it recorded (never by name: other work on
# the machine may run its own etcd or dockerd), removes the pods' containers, unmounts the
# kubelet's volume mounts and the iptables rules the kubelet, kube-proxy and network_policy.py
# added. Safe to run twice or after a failed start. The Docker engine is stopped only if
# k8s-up.sh started it.
# Usage: scripts/ci/k8s-down.sh [--unmount-only]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/ci/common.sh
. "$here/common.sh"
W=$K8S_WORK

# SIGTERM, up to 15 s to exit, then SIGKILL.
stop() {
  local f=$W/run/$1.pid pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for ((i = 0; i < 30; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null && say "$1 (pid $pid) ignored SIGTERM; killed"
  fi
  rm -f "$f"
}

unmount_kubelet() {
  # Deepest first: secret and emptyDir tmpfs mounts sit inside the pods' directories, which sit
  # inside the kubelet's root dir (it bind-mounts that onto itself).
  findmnt -rn -o TARGET | grep -E "^$W/kubelet(/|$)" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}

# The kubelet and kube-proxy add KUBE-* chains to the filter, nat and mangle tables, with jumps
# from the built-in chains (KUBE-FIREWALL on INPUT and OUTPUT drops some localnet traffic): drop
# the jumps, then the chains, so the machine's firewall is left as it was found.
remove_iptables_rules() {
  local table rule chain
  for table in filter nat mangle; do
    iptables -t "$table" -S 2>/dev/null | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-' \
      | while read -r rule; do
        # The rule as iptables printed it, its quotes included: a comment with spaces
        # ("kubernetes forwarding rules") split into words would name no rule.
        eval "iptables -t $table -D ${rule#-A }" 2>/dev/null
      done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null
    done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
      iptables -t "$table" -X "$chain" 2>/dev/null
    done
  done
  # k8s-up.sh's refusal of unrouted ClusterIP traffic (in Docker's chain for user rules).
  while iptables -D DOCKER-USER -d "$K8S_SERVICE_CIDR" -j REJECT 2>/dev/null; do :; done
  # The NetworkPolicy chains: the jump from FORWARD, then MLOPS-NETPOL and MLOPS-NP-*.
  python3 "$here/network_policy.py" --remove 2>/dev/null || true
}

if [ "${1:-}" = --unmount-only ]; then
  unmount_kubelet
  exit 0
fi
[ -d "$W/run" ] || exit 0
for c in network-policy volume-reclaimer kube-proxy kubelet scheduler controller-manager \
  cluster-dns dnsmasq apiserver etcd; do stop "$c"; done
if docker info >/dev/null 2>&1; then
  docker ps -aq --filter name=k8s_ | xargs -r docker rm -f >/dev/null 2>&1
fi
unmount_kubelet
remove_iptables_rules
stop dockerd
say "Kubernetes stopped"
