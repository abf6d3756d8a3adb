#!/usr/bin/env bash
# Starts a single-node Kubernetes 1.20 from the binaries scripts/ci/k8s-build.sh cached: Debian's
# Docker engine (only if no engine answers), the debian:bookworm-slim base image (debootstrapped
# once and cached, since no registry is reachable), etcd, the API server, controller-manager,
# scheduler, kubelet (dockershim) and kube-proxy, plus what kind's node brings and this build lacks:
# cluster DNS (dnsmasq fed by cluster_dns.py), NetworkPolicy enforcement (network_policy.py) and a
# default StorageClass with local volumes. Every process is recorded by PID in the work dir
# so scripts/ci/k8s-down.sh stops exactly these. Prints the kubeconfig path on stdout when the node
# is Ready. If the node is already up, it only prints the path. If starting fails, it prints the
# failing component's log and stops what it started.
# Usage: scripts/ci/k8s-up.sh          then: export KUBECONFIG=$(scripts/ci/k8s-up.sh)
#        scripts/ci/k8s-up.sh --engine-only   (the engine and the base image, e.g. to build images)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/ci/common.sh
. "$here/common.sh"

W=$K8S_WORK
API=https://127.0.0.1:$K8S_API_PORT

engine_answers() { docker info >/dev/null 2>&1; }
alive() { [ -f "$W/run/$1.pid" ] && kill -0 "$(cat "$W/run/$1.pid")" 2>/dev/null; }
api_ready() { curl -sf --max-time 2 --cacert "$W/pki/ca.crt" "$API/readyz" >/dev/null 2>&1; }
kc() { kubectl --kubeconfig "$K8S_KUBECONFIG" "$@"; }

# `start NAME CMD...`: in its own session (it outlives this script and the CI step that ran it),
# output in logs/NAME.log, PID in run/NAME.pid.
start() {
  local name=$1
  shift
  setsid "$@" >"$W/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$W/run/$name.pid"
}

# `wait_for WHAT SECONDS LOG CMD...` polls CMD every half second; on timeout shows LOG's tail.
wait_for() {
  local what=$1 seconds=$2 log=$3 i
  shift 3
  for ((i = 0; i < seconds * 2; i++)); do
    "$@" && return 0
    sleep 0.5
  done
  [ -f "$log" ] && tail -n 25 "$log" >&2
  die "$what not ready after ${seconds}s (log: $log)"
}

engine() {
  if engine_answers; then
    say "Docker engine already answers; using it"
    return 0
  fi
  command -v dockerd >/dev/null || die "no Docker engine answers and dockerd is missing: run scripts/ci/k8s-build.sh packages"
  start dockerd dockerd
  wait_for "dockerd" 60 "$W/logs/dockerd.log" engine_answers
}

# The base image, from the cached debootstrapped root filesystem (common.sh: base_rootfs), so
# Dockerfiles `FROM debian:bookworm-slim` build unchanged here and on a laptop.
base_image() {
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "$BASE_IMAGE already in the engine"
    return 0
  fi
  base_rootfs
  docker import -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$BASE_TARBALL" "$BASE_IMAGE" >/dev/null
  say "imported $BASE_IMAGE"
}

pki() {
  mkdir -p "$W/pki"
  cd "$W/pki"
  local node_ip=$1
  # Reused while the CA has more than a day left and the node address (in the API server's
  # certificate) is the same; CI machines are long-lived, certificates are not.
  if [ -f admin.crt ] && [ "$(cat node-ip 2>/dev/null)" = "$node_ip" ] \
    && openssl x509 -checkend 86400 -noout -in ca.crt >/dev/null 2>&1; then return 0; fi
  rm -f ./*
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -subj /CN=mlops-lab-ci-ca -days 30 -out ca.crt 2>/dev/null
  sign() { # NAME SUBJECT EXTENSIONS
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    printf '%b' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  }
  sign apiserver /CN=kube-apiserver "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:kubernetes,\
DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$node_ip,IP:10.96.0.1\n"
  sign admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth\n"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  chmod 600 ./*.key
  echo "$node_ip" >node-ip
}

kubeconfig() {
  local k=(kubectl config --kubeconfig="$K8S_KUBECONFIG")
  "${k[@]}" set-cluster ci --server="$API" --certificate-authority="$W/pki/ca.crt" --embed-certs >/dev/null
  "${k[@]}" set-credentials admin --client-certificate="$W/pki/admin.crt" --client-key="$W/pki/admin.key" --embed-certs >/dev/null
  "${k[@]}" set-context ci --cluster=ci --user=admin >/dev/null
  "${k[@]}" use-context ci >/dev/null
  chmod 600 "$K8S_KUBECONFIG"
}

# No CoreDNS image here, so the names CoreDNS would answer come from dnsmasq on the bridge
# address (the kubelet's --cluster-dns), fed by cluster_dns.py from the Services every second.
# cluster.local is answered locally only; other names go to the machine's own resolver.
cluster_dns() {
  local node_ip=$1
  mkdir -p "$W/dns"
  : >"$W/dns/hosts"
  chmod 755 "$W/dns"
  chmod 644 "$W/dns/hosts"
  start dnsmasq dnsmasq --keep-in-foreground --log-facility=- --conf-file=/dev/null --pid-file= --no-hosts \
    --listen-address="$node_ip" --bind-interfaces --addn-hosts="$W/dns/hosts" --local=/cluster.local/ \
    --domain-needed --no-negcache
  start cluster-dns python3 "$here/cluster_dns.py" --work-dir "$W" --api "$API" --hosts "$W/dns/hosts" \
    --dnsmasq-pid "$W/run/dnsmasq.pid"
  kubernetes_record() { grep -q ' kubernetes.default.svc.cluster.local$' "$W/dns/hosts"; }
  wait_for "cluster DNS" 30 "$W/logs/cluster-dns.log" kubernetes_record
}

# kind's node comes with a default StorageClass "standard"; so does this one, backed by static
# local volumes in the work dir (world-writable like kind's local-path ones; the kubelet also
# applies a pod's fsGroup to local volumes). Ten volumes cover the platform's claims and the labs'.
storage() {
  local i manifest
  manifest="apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
"
  for i in $(seq 0 9); do
    mkdir -p "$W/volumes/pv$i"
    chmod 777 "$W/volumes/pv$i"
    manifest+="---
apiVersion: v1
kind: PersistentVolume
metadata: {name: local-pv$i}
spec:
  capacity: {storage: 20Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: standard
  local: {path: $W/volumes/pv$i}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [node1]}]
"
  done
  kc apply -f - <<<"$manifest" >/dev/null
  # Deleting a claim (namespace mlops-lab, at every clean) empties its volume and makes it
  # Available again, as kind's local-path provisioner deletes it: see volume_reclaimer.py.
  start volume-reclaimer python3 "$here/volume_reclaimer.py" --work-dir "$W" --api "$API" \
    --volumes "$W/volumes"
}

# Docker's bridge network enforces no NetworkPolicy, and kind's kindnet does: network_policy.py
# renders the API's policies as iptables rules every second (chain MLOPS-NETPOL, jumped to first
# from FORWARD), so the base's policies hold here as on kind.
network_policy() {
  start network-policy python3 "$here/network_policy.py" --work-dir "$W" --api "$API" \
    --bridge "$(ip -4 -o addr show docker0 | awk '{print $4}')"
  chain_in_place() { iptables -S FORWARD 1 2>/dev/null | grep -q -- '-j MLOPS-NETPOL$'; }
  wait_for "NetworkPolicy enforcement" 30 "$W/logs/network-policy.log" chain_in_place
}

node() {
  local node_ip b=$K8S_BIN
  node_ip=$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1)
  [ -n "$node_ip" ] || die "no docker0 bridge: the Docker engine must use its default bridge network"
  ! ss -ltn "sport = :$K8S_API_PORT" | grep -q LISTEN \
    || die "port $K8S_API_PORT is taken: stop what listens there or set MLOPS_LAB_K8S_API_PORT"
  # A fresh cluster every time: pods a crashed run left in etcd or in the engine must not come back.
  docker ps -aq --filter name=k8s_ | xargs -r docker rm -f >/dev/null
  "$here/k8s-down.sh" --unmount-only
  rm -rf "$W/etcd-data" "$W/kubelet" "$W/volumes" "$W/dns"
  pki "$node_ip"
  kubeconfig
  cd "$W"
  docker image inspect "$K8S_PAUSE_IMAGE" >/dev/null 2>&1 \
    || tar -C "$b" -c pause | docker import -c 'ENTRYPOINT ["/pause"]' - "$K8S_PAUSE_IMAGE" >/dev/null
  start etcd etcd --name ci --data-dir "$W/etcd-data" \
    --listen-client-urls http://127.0.0.1:12379 --advertise-client-urls http://127.0.0.1:12379 \
    --listen-peer-urls http://127.0.0.1:12380 --initial-advertise-peer-urls http://127.0.0.1:12380 \
    --initial-cluster ci=http://127.0.0.1:12380 --listen-metrics-urls http://127.0.0.1:12381
  # Advertised on docker0 so pods reach the API through the `kubernetes` Service.
  start apiserver "$b/kube-apiserver" --etcd-servers=http://127.0.0.1:12379 --secure-port="$K8S_API_PORT" \
    --bind-address=0.0.0.0 --advertise-address="$node_ip" --insecure-port=0 \
    --tls-cert-file=pki/apiserver.crt --tls-private-key-file=pki/apiserver.key --client-ca-file=pki/ca.crt \
    --service-account-key-file=pki/sa.pub --service-account-signing-key-file=pki/sa.key \
    --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range=$K8S_SERVICE_CIDR \
    --authorization-mode=Node,RBAC --allow-privileged=true \
    --kubelet-client-certificate=pki/admin.crt --kubelet-client-key=pki/admin.key \
    --kubelet-preferred-address-types=InternalIP,Hostname
  wait_for "kube-apiserver" 90 "$W/logs/apiserver.log" api_ready
  cluster_dns "$node_ip"
  start controller-manager "$b/kube-controller-manager" --kubeconfig="$K8S_KUBECONFIG" \
    --service-account-private-key-file=pki/sa.key --root-ca-file=pki/ca.crt --leader-elect=false \
    --bind-address=127.0.0.1 --port=0 --use-service-account-credentials=true
  start scheduler "$b/kube-scheduler" --kubeconfig="$K8S_KUBECONFIG" --leader-elect=false --bind-address=127.0.0.1 --port=0
  # oom-score-adj 0 and no eviction thresholds: the VM lacks CAP_SYS_RESOURCE, and CI's disk is
  # shared with other work, so disk-pressure evictions would only make the run flaky.
  start kubelet "$b/kubelet" --kubeconfig="$K8S_KUBECONFIG" --container-runtime=docker \
    --docker-endpoint=unix:///var/run/docker.sock --pod-infra-container-image="$K8S_PAUSE_IMAGE" \
    --cgroup-driver=cgroupfs --fail-swap-on=false --root-dir="$W/kubelet" --hostname-override=node1 \
    --node-ip="$node_ip" --oom-score-adj=0 --read-only-port=0 --address=0.0.0.0 --healthz-bind-address=127.0.0.1 \
    --image-gc-high-threshold=100 --eviction-hard= --cluster-dns="$node_ip" --cluster-domain=cluster.local
  start kube-proxy "$b/kube-proxy" --kubeconfig="$K8S_KUBECONFIG" --proxy-mode=iptables --hostname-override=node1 \
    --oom-score-adj=0 --conntrack-max-per-core=0 --metrics-bind-address=127.0.0.1:10249 \
    --healthz-bind-address=127.0.0.1:10256 --cluster-cidr=172.17.0.0/16
  # A ClusterIP is reachable only through kube-proxy's DNAT rules. Until kube-proxy has written a
  # new Service's rules, a pod's connection to it leaves by the default route, and this VM's
  # network answers any outbound TCP connection: serving's registry client kept such a connection
  # alive and polled a stranger for good (HTTP 404, never the champion). Refuse it, as a cluster
  # network would, so the client retries once the rules exist.
  iptables -C DOCKER-USER -d "$K8S_SERVICE_CIDR" -j REJECT 2>/dev/null ||
    iptables -I DOCKER-USER -d "$K8S_SERVICE_CIDR" -j REJECT
  network_policy
  node_ready() { kc get node node1 2>/dev/null | grep -q ' Ready'; }
  wait_for "node node1" 90 "$W/logs/kubelet.log" node_ready
  # Pods cannot be created in a namespace before its default ServiceAccount exists.
  default_sa() { kc -n default get serviceaccount default >/dev/null 2>&1; }
  wait_for "the default ServiceAccount" 60 "$W/logs/controller-manager.log" default_sa
  storage
  local c
  for c in etcd apiserver controller-manager scheduler kubelet kube-proxy dnsmasq cluster-dns \
    network-policy volume-reclaimer; do
    alive "$c" || die "$c exited: see $W/logs/$c.log"
  done
}

mkdir -p "$W/run" "$W/logs" "$CI_CACHE/images"
if [ "${1:-}" = --engine-only ]; then
  phase "docker engine" engine
  phase "base image" base_image
  exit 0
fi
[ -x "$K8S_BIN/kube-apiserver" ] || die "no Kubernetes binaries in $K8S_BIN: run scripts/ci/k8s-build.sh first"
if alive apiserver && [ -f "$K8S_KUBECONFIG" ] && api_ready; then
  say "Kubernetes is already up"
  echo "$K8S_KUBECONFIG"
  exit 0
fi
trap 'status=$?; if [ $status -ne 0 ]; then say "k8s-up failed; stopping what it started"; "$here/k8s-down.sh" >&2 || true; fi' EXIT
phase "docker engine" engine
phase "base image" base_image
phase "node up" node
trap - EXIT
kc get nodes -o wide >&2
echo "$K8S_KUBECONFIG"
