# Shared by the scripts/ci/k8s-*.sh scripts (sourced, not run): where the single-node Kubernetes
# built from Debian's archive keeps its cache and its state, and how each phase reports its time.
# Both live outside the checkout so a machine builds once and a `git clean` never drops them.

K8S_VERSION=1.20.2
# Debian bookworm's source package of Kubernetes 1.20.2 (full upstream tree with vendor/).
K8S_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
K8S_ORIG_TARBALL=kubernetes_1.20.5+really1.20.2.orig.tar.gz
K8S_BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
# What the build and the node need from Debian's archive (socat: the kubelet runs it for
# `kubectl port-forward`).
CI_PACKAGES=(golang-1.19-go etcd-server docker.io iptables gcc debootstrap dnsmasq-base openssl curl
  ca-certificates socat)

CI_CACHE=${MLOPS_LAB_CI_CACHE:-/var/cache/mlops-lab}
K8S_CACHE=$CI_CACHE/k8s-$K8S_VERSION
K8S_BIN=$K8S_CACHE/bin
# Node state: PKI, PIDs, logs, etcd data, kubelet root and the admin kubeconfig.
K8S_WORK=${MLOPS_LAB_K8S_WORK:-/var/lib/mlops-lab-ci/k8s}
K8S_KUBECONFIG=$K8S_WORK/admin.kubeconfig
K8S_API_PORT=${MLOPS_LAB_K8S_API_PORT:-16443}
# The kubelet is told to use this image for pod sandboxes; it is built here, never pulled.
K8S_PAUSE_IMAGE=local/pause:3.2
K8S_SERVICE_CIDR=10.96.0.0/16
BASE_IMAGE=debian:bookworm-slim
# debootstrap's minbase bookworm, the root filesystem of BASE_IMAGE and of the fresh-machine job.
BASE_TARBALL=$CI_CACHE/images/debian-bookworm-slim-rootfs.tar

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() {
  printf '\033[1;31mERROR:\033[0m %s\n' "$*" >&2
  exit 1
}

# `phase NAME CMD...` runs CMD and reports how long it took; with MLOPS_LAB_CI_TIMINGS set, the
# line is also appended there so .ci/run can print every phase's time at the end.
phase() {
  local name=$1 start rc=0
  shift
  start=$(date +%s)
  # A subshell outside any `||`, so `set -e` still stops CMD at its first failing command (bash
  # ignores errexit inside a function called as `f || ...`).
  set +e
  (
    set -e
    "$@"
  )
  rc=$?
  set -e
  local line
  line=$(printf '%-28s %4ss%s' "$name" "$(($(date +%s) - start))" "$([ $rc -eq 0 ] || echo " (failed, exit $rc)")")
  say "phase: $line"
  if [ -n "${MLOPS_LAB_CI_TIMINGS:-}" ]; then echo "$line" >>"$MLOPS_LAB_CI_TIMINGS"; fi
  return $rc
}

# Installs only what is missing, so a provisioned machine skips `apt-get update` entirely.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}"
  say "Installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# debootstrap's minbase bookworm from the machine's own mirror, as a tarball in the cache: later
# runs unpack or import it in seconds instead of debootstrapping (~1 min).
base_rootfs() {
  [ -s "$BASE_TARBALL" ] && return 0
  local mirror rootfs=$CI_CACHE/images/rootfs
  mkdir -p "$CI_CACHE/images"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list.d/debian.sources"
  command -v debootstrap >/dev/null || ensure_packages debootstrap
  say "Debootstrapping Debian bookworm (minbase) from $mirror"
  rm -rf "$rootfs" && mkdir -p "$rootfs"
  nice -n 19 debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$CI_CACHE/images/debootstrap.log" 2>&1 \
    || die "debootstrap failed: see $CI_CACHE/images/debootstrap.log"
  # The downloaded .debs and package lists are a third of the size; the slim image ships neither.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -cf "$BASE_TARBALL.tmp" . && mv "$BASE_TARBALL.tmp" "$BASE_TARBALL"
  rm -rf "$rootfs"
}
