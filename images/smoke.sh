#!/usr/bin/env bash
# Smoke-test every image src/commerce_lm_components/images.py lists, as built: images/smoke-steps.sh
# runs inside each, as the image's user, with no network, in a fresh folder under /tmp; finetune-encoder runs under
# torchrun with 2 processes in the training image. The root file system must come out unwritten
# outside /tmp, as in the pods (readOnlyRootFilesystem, /tmp an emptyDir).
#
# With docker the container's root is read-only itself. With podman (whose containers cannot start
# inside another container, as on our build machines) buildah runs the commands in a working container
# with chroot isolation, and its root is listed (path, type, mode, owner, size, mtime) before and after.
# Arguments: the images to test (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
ENGINE=${ENGINE:-$(docker info >/dev/null 2>&1 && echo docker || echo podman)}
STEPS=$(cat images/smoke-steps.sh)
UID_GID=$("$PY" -c 'from commerce_lm_components.images import IMAGE_UID as u; print(f"{u}:{u}")')

listing() {
    # Kernel and runtime mounts (/proc, /sys, /dev, /run, the files buildah bind-mounts into /etc)
    # are the runtime's, not the image's.
    (cd "$1" && find . -xdev \( -path ./tmp -o -path ./proc -o -path ./sys -o -path ./dev -o -path ./run \) -prune \
        -o ! -path ./etc/hosts ! -path ./etc/resolv.conf ! -path ./etc/hostname -printf '%p %y %m %U %s %T@\n' | sort)
}

smoke() (  # IMAGE PROCESSES; a subshell, so that the working container goes whatever happens
    if [[ $ENGINE == docker ]]; then
        exec docker run --rm -i --read-only --tmpfs /tmp --network none --user "$UID_GID" "$1" \
            sh -c "$STEPS" smoke "$2" <configs/tiny.yaml
    fi
    container=$(buildah from --pull-never "$1")
    trap 'buildah rm "$container" >/dev/null' EXIT
    root=$(buildah mount "$container")
    # buildah's chroot isolation offers only the host's network: a new network namespace with just
    # loopback (where torchrun's processes meet) is the pod without egress. The host's hostname, which
    # its /etc/hosts resolves: torchrun's ranks wait for ever on an unresolvable one.
    run=(unshare --net sh -c 'ip link set lo up && exec "$@"' offline
        buildah run --isolation chroot --uts host --user "$UID_GID" "$container" --)
    # A first run makes the files buildah mounts into /etc, so the listing compares the steps' writes.
    "${run[@]}" true
    before=$(listing "$root")
    "${run[@]}" sh -c "$STEPS" smoke "$2" <configs/tiny.yaml
    if ! diff <(echo "$before") <(listing "$root"); then
        echo "$1 wrote to its root file system outside /tmp (above: < before, > after)" >&2
        exit 1
    fi
    echo "root file system: unchanged outside /tmp ($(echo "$before" | wc -l) entries compared)"
)

# The images are read into an array first: piped into the loop, their list was its stdin, which the
# first image's `buildah run` read up, so the second image was never tested.
mapfile -t targets < <(COMMERCE_LM_REGISTRY=${REGISTRY:?} "$PY" -c '
from commerce_lm_components import images
print(images.TRAINING_IMAGE, 2)
print(images.CPU_IMAGE, 1)
')
for target in "${targets[@]}"; do
    read -r image procs <<<"$target"
    [[ $# -eq 0 || " $* " == *" $image "* ]] || continue
    echo "=== $image"
    smoke "$image" "$procs" </dev/null
done
