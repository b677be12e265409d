#!/usr/bin/env bash
# The container image, built with buildah and run with podman (no Docker engine needed).
#
#   scripts/image-check.sh build   build localhost/tracking-consumer:dev (`make image`)
#   scripts/image-check.sh check   build, then run it as production would (.ci/run):
#                                  non-root, read-only root filesystem, `check-config`, and a short
#                                  real run against a local broker and the Redo sandbox (host
#                                  network) that must deliver calls and exit 0 on SIGTERM
#
# Docker Hub is out of reach here, so the Dockerfile's default base (the official
# python:3.11-slim-bookworm) cannot be pulled. The script makes a stand-in locally: a minimal
# Debian bookworm with its Python 3.11 (debootstrap from the mirror apt already uses), committed
# as $BASE_IMAGE and passed to the build as PYTHON_IMAGE. The Dockerfile keeps the official image
# as its default, so `docker build .` anywhere else is unchanged.
#
# Installed on first use: buildah, podman, runc, skopeo, debootstrap (Debian packages). Cached:
# the base image as an OCI archive under ~/.cache/tracking-consumer/image/, so a rerun on a new
# container storage loads it in seconds instead of running debootstrap again.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-check}
IMAGE=${IMAGE:-localhost/tracking-consumer:dev}
BASE_IMAGE=localhost/debian-python:3.11-bookworm
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/tracking-consumer/image
BASE_ARCHIVE=$CACHE/debian-python-3.11-bookworm.oci.tar
PYTHON=${PYTHON:-.venv/bin/python}
HOST_CA=/etc/ssl/certs/ca-certificates.crt
# vfs works in any container this runs in (no overlay mounts needed); both tools read this.
export STORAGE_DRIVER=vfs

step() { printf '\n== %s\n' "$*"; }

install_tools() {
    local missing=()
    for tool in buildah podman runc skopeo debootstrap; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        echo "installing ${missing[*]} (Debian packages)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            buildah podman runc skopeo debootstrap uidmap >/dev/null
    fi
}

debian_mirror() {  # the Debian mirror apt is configured with (deb.debian.org if none found)
    local found
    found=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ \
        2>/dev/null | head -1 | tr -d ' ' || true)
    echo "${found:-http://deb.debian.org/debian}"
}

base_image() {
    if buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
        echo "base image $BASE_IMAGE present"
        return
    fi
    if [[ -f "$BASE_ARCHIVE" ]]; then
        echo "loading base image from $BASE_ARCHIVE"
        local id
        id=$(buildah pull --quiet "oci-archive:$BASE_ARCHIVE")
        buildah tag "$id" "$BASE_IMAGE"
        return
    fi
    echo "making base image $BASE_IMAGE with debootstrap (once; cached in $CACHE)"
    local rootfs container
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
        bookworm "$rootfs" "$(debian_mirror)" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    container=$(buildah from scratch)
    buildah copy --quiet "$container" "$rootfs/" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd python3 "$container"
    buildah commit --quiet "$container" "$BASE_IMAGE" >/dev/null
    buildah rm "$container" >/dev/null
    rm -rf "$rootfs"
    mkdir -p "$CACHE"
    buildah push --quiet "$BASE_IMAGE" "oci-archive:$BASE_ARCHIVE.part" && mv "$BASE_ARCHIVE.part" "$BASE_ARCHIVE"
}

build_image() {
    local ca=()
    # Where the package index is reached through an intercepting proxy, pip in the build needs
    # the host's CA bundle: mounted for the build only, never copied into the image.
    [[ -f "$HOST_CA" ]] && ca=(--volume "$HOST_CA:$HOST_CA:ro")
    # --format docker keeps the HEALTHCHECK (the OCI format has none); --layers reuses the
    # dependency layers of an earlier build.
    buildah bud --quiet --layers --isolation chroot --format docker "${ca[@]}" \
        --build-arg PYTHON_IMAGE="$BASE_IMAGE" \
        --build-arg VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)" \
        --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
        --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        --tag "$IMAGE" . >/dev/null
    buildah images "$IMAGE"
}

step "tools"
install_tools
buildah --version
podman --version
step "base image"
base_image
step "build $IMAGE (PYTHON_IMAGE=$BASE_IMAGE)"
build_image
if [[ "$MODE" == build ]]; then
    exit 0
fi
step "run $IMAGE with podman"
"$PYTHON" scripts/image_smoke.py "$IMAGE"
step "image checks passed"
