#!/usr/bin/env bash
# Builds the platform's images for the Kubernetes runtimes, for the Docker engine's architecture
# (x86_64, or aarch64 on Apple Silicon and arm Linux: the kind node runs on the same engine),
# offline-friendly:
#   1. a wheelhouse in build/wheels: uv.lock's own wheel of every package the image installs, for
#      Debian bookworm's CPython 3.11 on that architecture, SHA-256 checked (images/wheelhouse.py),
#      downloaded on the host because containers here cannot verify the package index's
#      certificate, and build/requirements.txt with the lock's hashes, which the image's pip
#      checks again (--require-hashes). uv is found as scripts/bootstrap.sh finds it; no pip is
#      needed;
#   2. images/platform and images/postgres, FROM $BASE_IMAGE (pulled when missing), from the repo
#      root, with `--platform linux/amd64` or `linux/arm64`;
#   3. a tag unique to the inputs (uv.lock, the Dockerfiles, the source tree and BASE_IMAGE), so a
#      changed tree never reuses an image a cluster already cached under the same name.
# Prints `name:tag` per image and writes build/image-tags.json for `mlops-lab up`.
# Env: DOCKER (default docker), SKIP_WHEELS=1 reuses an existing wheelhouse as it is,
# BASE_IMAGE (default debian:bookworm-slim, a tag: nothing here records a digest; set
# debian@sha256:<digest> to pin one, see k8s/README.md).
set -euo pipefail

cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
OUT=build
WHEELS=$OUT/wheels
IMAGES=(platform postgres)
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}

die() {
    echo "$*" >&2
    exit 1
}

# uv as scripts/bootstrap.sh finds it: on PATH, as python3's module, or the binary bootstrap
# fetched into .tools/ (bootstrap's version).
UV=()
find_uv() {
    local version
    version=$(sed -n 's/^UV_VERSION="\(.*\)"$/\1/p' scripts/bootstrap.sh)
    if uv --version >/dev/null 2>&1; then
        UV=(uv)
    elif python3 -m uv --version >/dev/null 2>&1; then
        UV=(python3 -m uv)
    elif [[ -n $version && -x .tools/uv-$version/uv ]]; then
        UV=(".tools/uv-$version/uv")
    else
        die "uv is not installed: \`make venv\` (scripts/bootstrap.sh) gets it; then run again."
    fi
}

# The engine's architecture, not this shell's (Docker Desktop runs a Linux VM), in the wheel
# tags' spelling; some engines say arm64 or amd64.
engine_arch() {
    local arch
    arch=$("$DOCKER" info --format '{{.Architecture}}')
    case $arch in
        x86_64 | amd64) echo x86_64 ;;
        aarch64 | arm64) echo aarch64 ;;
        *) die "The Docker engine runs on $arch: the images are built for x86_64 and aarch64 only." ;;
    esac
}

# images/wheelhouse.py needs `packaging`: the project's venv has it, else uv lends one.
wheelhouse() {
    if [[ -x .venv/bin/python ]]; then
        .venv/bin/python images/wheelhouse.py "$@"
    else
        "${UV[@]}" run --no-project --quiet --python '>=3.11' --with packaging \
            python images/wheelhouse.py "$@"
    fi
}

build_wheelhouse() {
    find_uv
    "${UV[@]}" export --frozen --no-dev --no-emit-project \
        --output-file "$OUT/requirements.txt" >/dev/null
    wheelhouse "$OUT/requirements.txt" uv.lock "$1" "$WHEELS"
}

image_tag() {
    # Committed and untracked (not ignored) files of the inputs: a dirty tree gets its own tag.
    {
        git ls-files -z --cached --others --exclude-standard -- \
            uv.lock pyproject.toml images platform_core pipelines serving monitoring \
            | sort -zu | while IFS= read -r -d '' file; do
                # Deleted but still in the index: its absence changes the hash (names are in it).
                if [[ -f $file ]]; then printf '%s\0' "$file"; fi
            done | xargs -0 sha256sum
        echo "$BASE_IMAGE"
    } | sha256sum | cut -c1-12
}

ensure_base_image() {
    "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
    echo "Pulling $BASE_IMAGE ..." >&2
    "$DOCKER" pull "$BASE_IMAGE" >&2 \
        || die "Could not pull $BASE_IMAGE (Docker's reason above). Without a registry, import" \
            "one: see k8s/README.md."
}

main() {
    if ! "$DOCKER" info >/dev/null 2>&1; then
        die "No Docker engine answers: start Docker (or set DOCKER=...) and run again."
    fi
    local arch platform
    arch=$(engine_arch)
    platform=linux/$([[ $arch == aarch64 ]] && echo arm64 || echo amd64)
    ensure_base_image
    # Attestation manifests (BuildKit's provenance) are one reported cause of `kind load` failing
    # on Docker's containerd image store; the legacy builder makes none and refuses the flags.
    local build_flags=(--platform "$platform") help
    help=$("$DOCKER" build --help 2>/dev/null || true)
    if [[ $help == *--provenance* ]]; then build_flags+=(--provenance=false); fi
    if [[ $help == *--sbom* ]]; then build_flags+=(--sbom=false); fi
    mkdir -p "$OUT"
    # The wheelhouse follows the lock, its picker and the architecture; the image tag the lock,
    # the sources and the base image.
    local stamp tag json="{" sep=""
    stamp=$({ cat uv.lock pyproject.toml images/wheelhouse.py; echo "$arch"; } | sha256sum \
        | cut -c1-12)
    tag=$(image_tag)
    if [[ ${SKIP_WHEELS:-0} == 1 && -d $WHEELS ]]; then
        echo "Reusing $WHEELS (SKIP_WHEELS=1)" >&2
    elif [[ -f $WHEELS.stamp && $(cat "$WHEELS.stamp") == "$stamp" ]]; then
        echo "Reusing $WHEELS (uv.lock unchanged)" >&2
    else
        echo "Downloading the $arch wheels into $WHEELS ..." >&2
        build_wheelhouse "$arch"
        echo "$stamp" >"$WHEELS.stamp"
    fi
    for image in "${IMAGES[@]}"; do
        local ref="mlops-lab-$image:$tag"
        if "$DOCKER" image inspect "$ref" >/dev/null 2>&1; then
            echo "$ref already built" >&2
        else
            echo "Building $ref for $platform ..." >&2
            "$DOCKER" build --quiet "${build_flags[@]}" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
                --file "images/$image/Dockerfile" --tag "$ref" . >/dev/null
        fi
        echo "$ref"
        json+="$sep\"mlops-lab-$image\": \"$ref\""
        sep=", "
    done
    echo "$json}" >"$OUT/image-tags.json"
}

main "$@"
