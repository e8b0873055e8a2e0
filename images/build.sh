#!/usr/bin/env bash
# Build (or, with `push`, push) every image src/commerce_lm_components/images.py lists, under the
# tags the compiled pipeline names, with docker or podman (ENGINE, default: docker when its daemon
# answers).
# Arguments: the images to build (default: all), or `push`.
#
# LOCAL_BASE=1 builds where no registry is reachable (podman only): the base of both images is a
# Debian 12 root file system made by debootstrap from the package mirror, and the training image is
# the same Dockerfile on it with Debian's Python and the CPU wheel of torch, so every layer but CUDA
# is built and tested. The bases' pip gets the host's CA bundle and a folder of wheels (TORCH_WHEELS,
# default: pip's find-links, where a CPU torch wheel may lie) mounted in; nothing of them stays in
# the images. Such images are for checking, not for a cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
ENGINE=${ENGINE:-$(docker info >/dev/null 2>&1 && echo docker || echo podman)}
LOCAL_BASE=${LOCAL_BASE:-}
BASE_IMAGE=localhost/commerce-lm-base:bookworm
BASE_ROOTFS=${BASE_ROOTFS:-/var/tmp/commerce-lm-base}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

images() {
    COMMERCE_LM_REGISTRY=${REGISTRY:?} "$PY" -m commerce_lm_components.images
}

local_base() {
    "$ENGINE" image exists "$BASE_IMAGE" && return
    # The CPU Dockerfile expects an image with `python` (python:*-slim); the training one installs its
    # own -dev and venv packages with apt, as on the CUDA base.
    rm -rf "$BASE_ROOTFS"
    debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
        bookworm "$BASE_ROOTFS" "$DEBIAN_MIRROR"
    tar -C "$BASE_ROOTFS" -c . | "$ENGINE" import - "$BASE_IMAGE"
    rm -rf "$BASE_ROOTFS"
}

build_args() {
    if [[ $ENGINE == podman ]]; then
        # chroot isolation and the host's network: the OCI runtime cannot start containers inside
        # another container (as on our build machines); podman reads no <Dockerfile>.dockerignore. The
        # host's hostname too: the container's own is in no /etc/hosts there, and torchrun's ranks
        # (the distributed tests) wait for ever to resolve it.
        echo --isolation chroot --network host --uts host --ignorefile "$1.dockerignore"
    fi
    [[ $LOCAL_BASE == 1 ]] || return 0
    # PyPI's torch 2.13.0 is a CUDA build; the CPU wheel (2.13.0+cpu, a higher version to pip) wins
    # when it lies in the find-links folder.
    echo --build-arg PYTHON_IMAGE=$BASE_IMAGE --build-arg CUDA_IMAGE=$BASE_IMAGE --build-arg PYTHON_VERSION=3.11 \
        --build-arg TORCH_INDEX=https://pypi.org/simple \
        --volume "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro" --volume "$PIP_CONF:/etc/pip.conf:ro" \
        --volume "$WHEELS:/wheels:ro"
}

if [[ ${1:-} == push ]]; then
    images | while read -r dockerfile tag; do "$ENGINE" push "$tag"; done
    exit
fi

if [[ $LOCAL_BASE == 1 ]]; then
    [[ $ENGINE == podman ]] || { echo "LOCAL_BASE=1 needs podman (ENGINE=$ENGINE)" >&2; exit 2; }
    WHEELS=${TORCH_WHEELS:-$(pip config get global.find-links 2>/dev/null || true)}
    [[ -d $WHEELS ]] || { echo "TORCH_WHEELS: no folder of wheels ('$WHEELS')" >&2; exit 2; }
    PIP_CONF=$(mktemp)
    trap 'rm -f "$PIP_CONF"' EXIT
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\nfind-links = /wheels\n' >"$PIP_CONF"
    local_base
fi

images | while read -r dockerfile tag; do
    [[ $# -eq 0 || " $* " == *" $tag "* ]] || continue
    start=$SECONDS
    # shellcheck disable=SC2046 # build_args is a list of words
    "$ENGINE" build -f "$dockerfile" -t "$tag" $(build_args "$dockerfile") .
    size=$("$ENGINE" image inspect --format '{{.Size}}' "$tag")
    echo "built $tag in $((SECONDS - start)) s, $((size / 1000000)) MB"
done
