#!/usr/bin/env bash
# Installs what a fresh machine lacks, then gets out of the way:
#   uv (with pip), the virtual environment from uv.lock, and the Prometheus and Alertmanager
#   binaries (Debian packages when run as root; otherwise it prints the command to run).
# Usage: scripts/bootstrap.sh [venv|system|all]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION="0.13.9"
what="${1:-all}"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# `uv --version` rather than `command -v uv`: a pyenv shim can outlive the package behind it.
uv_cmd() {
  if uv --version >/dev/null 2>&1; then
    uv "$@"
  else
    python3 -m uv "$@"
  fi
}

ensure_uv() {
  if uv --version >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1; then
    return
  fi
  say "Installing uv ${UV_VERSION} with pip"
  python3 -m pip install --quiet "uv==${UV_VERSION}" \
    || python3 -m pip install --quiet --user "uv==${UV_VERSION}"
}

ensure_venv() {
  ensure_uv
  # --frozen: install exactly what uv.lock says; never re-resolve on a learner's machine.
  if [ -x .venv/bin/mlops-lab ] && [ .venv/.synced -nt uv.lock ] && [ .venv/.synced -nt pyproject.toml ]; then
    return
  fi
  say "Creating the virtual environment from uv.lock (first time: a few minutes)"
  # --compile-bytecode: once here (about 15 s), not in every process. Python run with
  # PYTHONDONTWRITEBYTECODE (some shells and CI set it) never writes .pyc files, so each service,
  # CLI call and flow run compiled MLflow, Prefect and scikit-learn from source: 3 s more each.
  uv_cmd sync --frozen --quiet --compile-bytecode
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

case "$what" in
  venv) ensure_venv ;;
  system) ensure_system ;;
  all) ensure_venv; ensure_system ;;
  *) echo "usage: $0 [venv|system|all]" >&2; exit 2 ;;
esac
