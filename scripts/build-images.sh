#!/usr/bin/env bash
# Builds the platform's images for the Kubernetes runtimes, offline-friendly:
#   1. a wheelhouse in build/wheels (every locked dependency as a cp311 manylinux x86_64 wheel,
#      plus the project's own wheel), downloaded on the host because containers here cannot
#      verify the package index's certificate;
#   2. images/platform and images/postgres, FROM debian:bookworm-slim, from the repo root;
#   3. a tag unique to the inputs (uv.lock, the Dockerfiles and the source tree), so a changed
#      tree never reuses an image a cluster already cached under the same name.
# Prints `name:tag` per image and writes build/image-tags.json for `mlops-lab up`.
# Env: DOCKER (default docker), SKIP_WHEELS=1 reuses an existing wheelhouse as it is.
set -euo pipefail

cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
OUT=build
WHEELS=$OUT/wheels
IMAGES=(platform postgres)

tree_hash() {
    # Committed and untracked (not ignored) files of the inputs: a dirty tree gets its own tag.
    git ls-files -z --cached --others --exclude-standard -- \
        uv.lock pyproject.toml images mlops_lab pipelines serving monitoring \
        | sort -zu | while IFS= read -r -d '' file; do
            # Deleted but still in the index: its absence changes the hash (names are in it).
            if [[ -f $file ]]; then printf '%s\0' "$file"; fi
        done | xargs -0 sha256sum | sha256sum | cut -c1-12
}

target_requirements() {
    # pip download judges markers by the host's Python; the image runs Debian bookworm's
    # CPython 3.11.2 on Linux x86_64 (python_full_version < '3.11.3' pulls async-timeout in).
    # The export is the whole locked closure, so the filtered list is downloaded with --no-deps.
    python3 - "$OUT/requirements.txt" <<'PY'
import sys
from pip._vendor.packaging.requirements import Requirement

target = {
    "python_version": "3.11", "python_full_version": "3.11.2", "implementation_name": "cpython",
    "platform_python_implementation": "CPython", "sys_platform": "linux", "os_name": "posix",
    "platform_system": "Linux", "platform_machine": "x86_64", "implementation_version": "3.11.2",
}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    requirement = Requirement(line)
    if requirement.marker is None or requirement.marker.evaluate(target):
        requirement.marker = None
        print(requirement)
PY
}

build_wheelhouse() {
    rm -rf "$WHEELS"
    mkdir -p "$WHEELS"
    python3 -m uv export --frozen --no-dev --no-emit-project --no-hashes \
        --output-file "$OUT/requirements.txt" >/dev/null
    # Every manylinux tag bookworm's glibc (2.36) runs: pip does not expand one into the older
    # ones by itself.
    local platforms=(--platform manylinux2014_x86_64)
    for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
    target_requirements >"$OUT/requirements-target.txt"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --dest "$WHEELS" --requirement "$OUT/requirements-target.txt" \
        --only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 \
        "${platforms[@]}"
    python3 -m uv build --wheel --out-dir "$WHEELS" >/dev/null
}

main() {
    if ! "$DOCKER" info >/dev/null 2>&1; then
        echo "No Docker engine answers: start Docker (or set DOCKER=...) and run again." >&2
        exit 1
    fi
    if ! "$DOCKER" image inspect debian:bookworm-slim >/dev/null 2>&1; then
        echo "Base image debian:bookworm-slim is missing: \`docker pull debian:bookworm-slim\`" \
            "(or import one, see k8s/README.md)." >&2
        exit 1
    fi
    mkdir -p "$OUT"
    # The wheelhouse follows the lock; the image tag follows the lock and the sources.
    local stamp tag json="{" sep=""
    stamp=$(cat uv.lock pyproject.toml | sha256sum | cut -c1-12)
    tag=$(tree_hash)
    if [[ ${SKIP_WHEELS:-0} == 1 && -d $WHEELS ]]; then
        echo "Reusing $WHEELS (SKIP_WHEELS=1)" >&2
    elif [[ -f $WHEELS.stamp && $(cat "$WHEELS.stamp") == "$stamp" ]]; then
        echo "Reusing $WHEELS (uv.lock unchanged)" >&2
    else
        echo "Downloading wheels into $WHEELS ..." >&2
        build_wheelhouse
        echo "$stamp" >"$WHEELS.stamp"
    fi
    for image in "${IMAGES[@]}"; do
        local ref="mlops-lab-$image:$tag"
        if "$DOCKER" image inspect "$ref" >/dev/null 2>&1; then
            echo "$ref already built" >&2
        else
            echo "Building $ref ..." >&2
            "$DOCKER" build --quiet --file "images/$image/Dockerfile" --tag "$ref" . >/dev/null
        fi
        echo "$ref"
        json+="$sep\"mlops-lab-$image\": \"$ref\""
        sep=", "
    done
    echo "$json}" >"$OUT/image-tags.json"
}

main "$@"
