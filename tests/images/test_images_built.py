"""The built images, smoke-tested by images/smoke.sh (`make images-smoke`).

Building is not a test's job (`make images`, tens of minutes): this runs only where an engine is present
and every image src/commerce_lm_components/images.py lists is built, and skips cleanly anywhere else
(CI included).
"""

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers.paths import REPO

pytest.importorskip("kfp")

from commerce_lm_components import images  # noqa: E402


def _engine() -> str | None:
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
        return "docker"
    # With podman the smoke test mounts buildah's working containers, which needs root.
    if shutil.which("podman") and shutil.which("buildah") and os.geteuid() == 0:
        return "podman"
    return None


def _built(engine: str, image: str) -> bool:
    probe = [engine, "image", "exists", image] if engine == "podman" else [engine, "image", "inspect", image]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.mark.slow
def test_every_built_image_runs_the_steps_as_its_user_offline_with_a_read_only_root() -> None:
    engine = _engine()
    if engine is None:
        pytest.skip("no container engine (a docker daemon, or podman and buildah as root)")
    missing = [image for image in images.IMAGES if not _built(engine, image)]
    if missing:
        pytest.skip(f"not built (make images): {', '.join(missing)}")
    env = {**os.environ, "ENGINE": engine, "REGISTRY": images.REGISTRY, "PY": sys.executable}
    done = subprocess.run([str(REPO / "images" / "smoke.sh")], env=env, capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("steps: all passed") == len(images.IMAGES), done.stdout[-3000:]
    if engine == "podman":
        assert done.stdout.count("root file system: unchanged outside /tmp") == len(images.IMAGES)
