#!/usr/bin/env bash
# Builds the Kubernetes server binaries (and the pod sandbox "pause" binary) from Debian bookworm's
# `kubernetes` source package with Debian's Go 1.19, into a cache outside the checkout. No container
# registry and no Go module proxy: Debian's archive only. A cold build takes ~9 minutes on 2 cores;
# with a valid cache this exits in a second. The cache is valid while its stamp holds the hash of
# this script (the recipe): change a patch or a flag here and the next run rebuilds.
# Usage: scripts/ci/k8s-build.sh [packages|binaries|all]   (default: all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/ci/common.sh
. "$here/common.sh"

# The recipe: this script and the versions it builds (not the rest of common.sh, whose package
# list and paths do not change the binaries).
RECIPE=$({
  cat "$here/k8s-build.sh"
  echo "$K8S_VERSION $K8S_DEB_VERSION ${K8S_BINARIES[*]}"
} | sha256sum | cut -d' ' -f1)
STAMP=$K8S_CACHE/recipe.sha256
# Kept across rebuilds: the source tarball and Go's build cache (a rebuild with it takes ~1 minute).
SRC_CACHE=$CI_CACHE/src
export GOCACHE=$CI_CACHE/go-build

cache_valid() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$RECIPE" ] || return 1
  local b
  for b in "${K8S_BINARIES[@]}" pause; do [ -x "$K8S_BIN/$b" ] || return 1; done
}

# The deb-src entry is derived from the machine's own deb822 sources at run time (whatever mirror
# or snapshot it uses) and kept in a private apt directory: the system's apt config is not touched.
fetch_source() {
  [ -f "$SRC_CACHE/$K8S_ORIG_TARBALL" ] && return 0
  local apt=$SRC_CACHE/apt
  mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial"
  local sources=/etc/apt/sources.list.d/debian.sources
  [ -f $sources ] || die "$sources not found: k8s-build.sh needs a Debian bookworm machine (deb822 sources)"
  sed 's/^Types: deb$/Types: deb-src/' $sources | grep -v '^#' >"$apt/parts/src.sources"
  local opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/parts"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
  apt-get "${opts[@]}" update -qq
  (cd "$SRC_CACHE" && apt-get "${opts[@]}" source --download-only "kubernetes=$K8S_DEB_VERSION" >/dev/null)
  rm -rf "$apt"
  [ -f "$SRC_CACHE/$K8S_ORIG_TARBALL" ] || die "apt-get source did not produce $K8S_ORIG_TARBALL"
}

# Patch 1: the vendored github.com/modern-go/reflect2 v1.0.1 declares Go's runtime map iterator
# with the pre-1.18 layout and signature; built with Go >= 1.18 any custom-resource request then
# panics the API server. Declare the Go 1.19 layout and let the caller own the iterator.
# Patch 2: the VM lacks CAP_SYS_RESOURCE, so runc refuses the negative oom_score_adj the kubelet
# gives guaranteed pods (-997..-999) and sandboxes (-998); use 0. Each patch fails loudly when the
# text it expects is absent, rather than building an unpatched binary.
patch_tree() {
  local tree=$1
  python3 - "$tree" <<'PY'
import re, sys
tree = sys.argv[1]

def edit(rel, old, new, count=1):
    path = f"{tree}/{rel}"
    text = open(path).read()
    if text.count(old) != count:
        sys.exit(f"patch: expected {count} x {old!r} in {rel}, found {text.count(old)}")
    open(path, "w").write(text.replace(old, new))

r2 = "vendor/github.com/modern-go/reflect2"
edit(f"{r2}/unsafe_link.go",
     "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer) *hiter",
     "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it *hiter)")
path = f"{tree}/{r2}/unsafe_link.go"
text = open(path).read()
fields = """	key         unsafe.Pointer
	value       unsafe.Pointer
	t           unsafe.Pointer
	h           unsafe.Pointer
	buckets     unsafe.Pointer
	bptr        unsafe.Pointer
	overflow    *[]unsafe.Pointer
	oldoverflow *[]unsafe.Pointer
	startBucket uintptr
	offset      uint8
	wrapped     bool
	B           uint8
	i           uint8
	bucket      uintptr
	checkBucket uintptr
"""
text, n = re.subn(r"type hiter struct \{\n.*?\n\}\n", "type hiter struct {\n" + fields + "}\n", text, flags=re.S)
if n != 1:
    sys.exit("patch: type hiter struct not found in reflect2/unsafe_link.go")
open(path, "w").write(text)
edit(f"{r2}/unsafe_map.go",
     "\treturn &UnsafeMapIterator{\n\t\thiter:      mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj)),",
     "\tvar it hiter\n\tmapiterinit(type2.rtype, *(*unsafe.Pointer)(obj), &it)\n"
     "\treturn &UnsafeMapIterator{\n\t\thiter:      &it,")

qos = "pkg/kubelet/qos/policy.go"
for name, value in (("KubeletOOMScoreAdj", 999), ("KubeProxyOOMScoreAdj", 999), ("guaranteedOOMScoreAdj", 997)):
    src = open(f"{tree}/{qos}").read()
    new, n = re.subn(rf"({name}\s+int\s*=\s*)-{value}\b", r"\g<1>0", src)
    if n != 1:
        sys.exit(f"patch: {name} = -{value} not found in {qos}")
    open(f"{tree}/{qos}", "w").write(new)
edit("pkg/kubelet/dockershim/docker_sandbox.go",
     "defaultSandboxOOMAdj int = -998", "defaultSandboxOOMAdj int = 0")
print("patched reflect2 map iteration and oom_score_adj")
PY
}

# Kubernetes 1.20 builds in GOPATH mode; pkg/generated/openapi is not in the tarball, so it is
# generated first with the tree's own openapi-gen (the same package selection as its Makefile).
build_binaries() {
  local build=$CI_CACHE/k8s-build out=$K8S_CACHE.new
  rm -rf "$build" "$out"
  mkdir -p "$SRC_CACHE" "$build/gopath/src/k8s.io" "$out/bin"
  fetch_source
  tar -C "$build" -xzf "$SRC_CACHE/$K8S_ORIG_TARBALL"
  local tree=$build/kubernetes-$K8S_VERSION
  [ -d "$tree" ] || die "the tarball did not unpack to kubernetes-$K8S_VERSION"
  patch_tree "$tree"
  ln -sfn "$tree" "$build/gopath/src/k8s.io/kubernetes"
  cd "$build/gopath/src/k8s.io/kubernetes"
  export PATH=/usr/lib/go-1.19/bin:$PATH CGO_ENABLED=0 GO111MODULE=off GOPATH=$build/gopath
  local go=(nice -n 19 go)
  "${go[@]}" build -o "$build/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  local dirs pkgs
  dirs=$(find -H . \( -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) \) -type f -name '*.go' \
    | sed 's|^./staging/src|vendor|; s|/[^/]*$||; s|^./||' | LC_ALL=C sort -u)
  pkgs=$(for d in $dirs; do find -H "$d" -maxdepth 1 -type f -name '*.go'; done \
    | xargs grep -l '^// *+k8s:' | grep -vE '^vendor/k8s.io/(code-generator|sample-apiserver)/' \
    | xargs grep -l '+k8s:openapi-gen=' | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd,)
  nice -n 19 "$build/openapi-gen" --logtostderr -i "$pkgs" -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    -r "$build/openapi-report.txt" 2>"$build/openapi-gen.log" || die "openapi-gen failed: see $build/openapi-gen.log"
  local v=k8s.io/kubernetes/vendor/k8s.io ldflags
  ldflags="-s -w -X $v/component-base/version.gitVersion=v$K8S_VERSION -X $v/component-base/version.gitMajor=1"
  ldflags+=" -X $v/component-base/version.gitMinor=20 -X $v/client-go/pkg/version.gitVersion=v$K8S_VERSION"
  ldflags+=" -X $v/client-go/pkg/version.gitMajor=1 -X $v/client-go/pkg/version.gitMinor=20"
  local b start
  for b in "${K8S_BINARIES[@]}"; do
    start=$(date +%s)
    "${go[@]}" build -trimpath -ldflags "$ldflags" -o "$out/bin/$b" "./cmd/$b"
    say "built $b in $(($(date +%s) - start))s"
  done
  nice -n 19 gcc -Os -static -o "$out/bin/pause" build/pause/linux/pause.c
  strip "$out/bin/pause"
  cd /
  echo "$RECIPE" >"$out/recipe.sha256"
  # Swap in the new cache only when complete, so an interrupted build never looks valid.
  rm -rf "$K8S_CACHE"
  mv "$out" "$K8S_CACHE"
  rm -rf "$build"
}

binaries() {
  if cache_valid; then
    say "Kubernetes $K8S_VERSION binaries: cache hit in $K8S_CACHE"
    return 0
  fi
  say "Building Kubernetes $K8S_VERSION from Debian's source package into $K8S_CACHE (~9 min cold)"
  build_binaries
}

case "${1:-all}" in
  packages) phase packages ensure_packages "${CI_PACKAGES[@]}" ;;
  binaries) phase "k8s binaries" binaries ;;
  all)
    phase packages ensure_packages "${CI_PACKAGES[@]}"
    phase "k8s binaries" binaries
    ;;
  *) die "usage: $0 [packages|binaries|all]" ;;
esac
