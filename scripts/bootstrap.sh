#!/usr/bin/env bash
# Installs what a fresh machine lacks, then gets out of the way:
#   uv (its own binary, into .tools/, when no uv is installed: no pip and no writable system
#   Python needed), the virtual environment from uv.lock, and for the local runtime the
#   Prometheus and Alertmanager binaries (Debian packages when run as root; otherwise it prints
#   the one command to run).
# Usage: scripts/bootstrap.sh [venv|system|all|up RUNTIME]   (default: all)
#   up RUNTIME: the venv, and the host's Prometheus and Alertmanager only if RUNTIME (auto, local,
#   kind or kube) means the local runtime: a cluster brings its own, and Debian's packages would
#   hold the ports kind binds.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.9"
# Where get_uv.py puts uv when the machine has none: inside the checkout, like .venv.
UV_LOCAL=".tools/uv-${UV_VERSION}/uv"
what="${1:-all}"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# The uv to run, as a command line: one on PATH (`uv --version` rather than `command -v uv`: a
# pyenv shim can outlive the package behind it), a `python3 -m uv`, or ours in .tools/.
UV=()
find_uv() {
  if uv --version >/dev/null 2>&1; then
    UV=(uv)
  elif python3 -m uv --version >/dev/null 2>&1; then
    UV=(python3 -m uv)
  elif [ -x "$UV_LOCAL" ]; then
    UV=("$UV_LOCAL")
  else
    return 1
  fi
}

no_uv() {
  say "uv ${UV_VERSION} could not be downloaded (see above). Install uv one of these ways, then run make again:"
  if [ "$(uname -s)" = "Darwin" ]; then
    echo "    brew install uv" >&2
  elif command -v apt-get >/dev/null 2>&1; then
    echo "    sudo apt-get install -y pipx && pipx install uv==${UV_VERSION}" >&2
  else
    echo "    pipx install uv==${UV_VERSION}" >&2
  fi
  echo "    curl -LsSf https://astral.sh/uv/${UV_VERSION}/install.sh | sh" >&2
  exit 1
}

ensure_uv() {
  find_uv && return
  if ! command -v python3 >/dev/null 2>&1; then
    say "python3 is needed to set up the platform. Install it (Debian/Ubuntu: sudo apt-get install -y python3; macOS: xcode-select --install), then run make again."
    exit 1
  fi
  say "Getting uv ${UV_VERSION} into ${UV_LOCAL%/uv} (from the package index; no pip needed)"
  python3 scripts/get_uv.py "$(dirname "$UV_LOCAL")" >/dev/null || no_uv
  find_uv || no_uv
}

ensure_venv() {
  ensure_uv
  # --frozen: install exactly what uv.lock says; never re-resolve on a learner's machine.
  if [ -x .venv/bin/mlops-lab ] && [ .venv/.synced -nt uv.lock ] && [ .venv/.synced -nt pyproject.toml ]; then
    return
  fi
  say "Creating the virtual environment from uv.lock (first time: a few minutes)"
  local existed=no
  [ -d .venv ] && existed=yes
  # --compile-bytecode: once here (about 15 s), not in every process. Python run with
  # PYTHONDONTWRITEBYTECODE (some shells and CI set it) never writes .pyc files, so each service,
  # CLI call and flow run compiled MLflow, Prefect and scikit-learn from source: 3 s more each.
  # uv makes the venv itself (no python3-venv needed) and, where the machine's Python is not
  # 3.11, fetches a 3.11 of its own.
  if ! "${UV[@]}" sync --frozen --quiet --compile-bytecode; then
    # A venv this run began is removed, never left half made.
    [ "$existed" = no ] && rm -rf .venv
    say "Creating .venv failed (see above); run make again once the cause is fixed."
    exit 1
  fi
  touch .venv/.synced
}

missing_packages() {
  local missing=()
  command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v alertmanager >/dev/null 2>&1 || command -v prometheus-alertmanager >/dev/null 2>&1 \
    || missing+=(prometheus-alertmanager)
  echo "${missing[@]:-}"
}

ensure_system() {
  local missing
  missing="$(missing_packages)"
  [ -z "$missing" ] && return
  if [ "$(uname -s)" = "Darwin" ]; then
    say "Missing: ${missing}. Install them with: brew install prometheus alertmanager"
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    say "Missing: ${missing}. Install Prometheus and Alertmanager with your package manager, then rerun."
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "Missing Debian packages: ${missing}. Run this, then rerun:"
    echo "    sudo apt-get install -y --no-install-recommends ${missing}" >&2
    # Under systemd the packages start system-wide services on 0.0.0.0:9090 and :9093, the ports
    # the platform's own Prometheus and Alertmanager bind on 127.0.0.1.
    if [ -d /run/systemd/system ]; then
      echo "    sudo systemctl disable --now prometheus prometheus-alertmanager" >&2
    fi
    exit 1
  fi
  say "Installing Debian packages: ${missing}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086  # word splitting of the package list is intended
  apt-get install -y -qq --no-install-recommends ${missing} >/dev/null
  # The packages start system-wide services on 0.0.0.0:9090/9093 where systemd runs; the
  # platform runs its own on 127.0.0.1, so turn the ones we just installed off.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    for unit in prometheus prometheus-alertmanager; do
      if systemctl list-unit-files "${unit}.service" >/dev/null 2>&1; then
        say "Disabling the system-wide ${unit} service the package started"
        systemctl disable --now "${unit}" >/dev/null 2>&1 || true
      fi
    done
  fi
}

# The runtime `mlops-lab up --runtime $1` would choose, by the CLI's own rule.
chosen_runtime() {
  .venv/bin/python -c 'import sys
from mlops_lab.runtime.selection import RuntimeName, choose
print(choose(RuntimeName(sys.argv[1])).runtime.value)' "$1"
}

case "$what" in
  venv) ensure_venv ;;
  system) ensure_system ;;
  all) ensure_venv; ensure_system ;;
  up)
    ensure_venv
    if [ "$(chosen_runtime "${2:-auto}")" = local ]; then ensure_system; fi
    ;;
  *) echo "usage: $0 [venv|system|all|up RUNTIME]" >&2; exit 2 ;;
esac
