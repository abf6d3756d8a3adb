#!/usr/bin/env bash
# A newcomer's first run, on a stock Debian bookworm: a fresh root filesystem (debootstrap's
# minbase, cached by common.sh) with only python3, git, make and ca-certificates installed, and a
# user who is not root. As that user: clone the project, `make up`; when it asks root for one
# `apt-get` line, run exactly that line as root, as the newcomer would; `make up` again, `make
# train`, one prediction, `make down`. Any step that would leave a newcomer stuck fails the job.
#
# Runs as root (chroot, mounts) and stops everything it started. The machine's CA bundle is
# copied in and named by SSL_CERT_FILE, as this machine's own environment does: the package
# indexes are reached through it here (a learner's machine needs no such step). The user's uv
# cache lives in the CI cache, so later runs download only what changed.
# Usage: scripts/ci/fresh-machine.sh [CHECKOUT]   (default: this checkout; its HEAD is cloned)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/ci/common.sh
. "$here/common.sh"

checkout=$(cd "${1:-$here/../..}" && pwd)
[ "$(id -u)" -eq 0 ] || die "fresh-machine.sh needs root (chroot and mounts)"
root=$(mktemp -d /var/tmp/mlops-lab-fresh.XXXXXX)
uv_cache=$CI_CACHE/fresh-machine/uv-cache
ca=/etc/ssl/certs/ca-certificates.crt
learner=newcomer
# The ports the platform binds by default: a newcomer's `make up` uses them.
ports=(5000 4200 8003 3000 8001 8002 9090 9093 3001 8004)

mounted=()
cleanup() {
  local rc=$?
  # Whatever a failed step left running in the root filesystem: its processes, by their root.
  local pid
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && kill -9 "$pid" 2>/dev/null || true
  done
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  rm -rf --one-file-system "$root"
  exit $rc
}
trap cleanup EXIT

bind() { # SOURCE TARGET [ro]
  mkdir -p "$root$2"
  mount --bind "$1" "$root$2"
  mounted+=("$root$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$root$2"; fi
}

# `as_root CMD` and `as_learner CMD` run a shell command inside the root filesystem.
env_vars=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
  SSL_CERT_FILE=/etc/ci-ca-bundle.crt DEBIAN_FRONTEND=noninteractive)
as_root() { chroot "$root" /usr/bin/env -i "${env_vars[@]}" bash -c "$1"; }
as_learner() {
  chroot --userspec="$learner:$learner" "$root" /usr/bin/env -i "${env_vars[@]}" \
    HOME=/home/$learner USER=$learner bash -c "cd /home/$learner && $1"
}

for port in "${ports[@]}"; do
  if ss -Hltn "sport = :$port" | grep -q .; then
    die "port $port is taken on this machine; the newcomer's platform needs the default ports"
  fi
done

phase "fresh: root filesystem" base_rootfs
say "Unpacking Debian bookworm into $root"
tar -C "$root" -xf "$BASE_TARBALL"
cp "$ca" "$root/etc/ci-ca-bundle.crt"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# What an installed Debian has and a debootstrapped tree lacks: localhost by name.
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
mkdir -p "$root/proc" "$root/dev/shm" && mount -t proc proc "$root/proc" && mounted+=("$root/proc")
bind /dev /dev
bind /dev/pts /dev/pts
mount -t tmpfs -o mode=1777 shm "$root/dev/shm" && mounted+=("$root/dev/shm")
bind /sys /sys ro

install_base() {
  as_root "apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 git make ca-certificates >/dev/null"
  as_root "useradd --create-home --shell /bin/bash $learner"
}
phase "fresh: python3 git make" install_base

mkdir -p "$uv_cache" "$root/home/$learner/.cache/uv"
chown -R "$(chroot "$root" id -u $learner):$(chroot "$root" id -g $learner)" "$uv_cache" \
  "$root/home/$learner/.cache"
bind "$uv_cache" "/home/$learner/.cache/uv"
bind "$checkout" /src ro
# The checkout is mounted from outside, owned by another user: git must be told it is safe (a
# newcomer clones from a remote instead).
as_root "git config --system --add safe.directory /src && git config --system --add safe.directory /src/.git"
as_learner "git clone --quiet /src mlops-lab"

first_up() {
  local out=$root/home/$learner/first-up.log rc=0
  as_learner "cd mlops-lab && make up" >"$out" 2>&1 || rc=$?
  cat "$out"
  if [ $rc -eq 0 ]; then
    say "make up passed without asking root for anything"
    return 0
  fi
  # What the newcomer is told to run as root: the `sudo` lines (here, with no systemd, one
  # `apt-get install`), each run as it was printed.
  grep -qE '^\s*sudo apt-get install' "$out" \
    || die "make up failed without printing the apt-get line a newcomer needs"
  as_root "apt-get update -qq"
  local line
  while read -r line; do
    say "As root, as make up asked: $line"
    as_root "$line >/dev/null"
  done < <(grep -E '^\s*sudo ' "$out" | sed -E 's/^\s*sudo //')
  as_learner "cd mlops-lab && make up"
}
phase "fresh: make up" first_up
phase "fresh: make train" as_learner "cd mlops-lab && make train"
phase "fresh: a prediction" as_learner "cd mlops-lab && make traffic RPS=2 DURATION=5 FEEDBACK=0"
phase "fresh: make down" as_learner "cd mlops-lab && make down"
say "A newcomer gets from a fresh Debian to a prediction and back"
