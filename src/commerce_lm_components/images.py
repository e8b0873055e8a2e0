"""Container images the components run in, tagged with the package version (the one place).

``make images`` builds and pushes exactly what :data:`IMAGES` lists (``python -m
commerce_lm_components.images`` prints ``DOCKERFILE TAG`` lines), so the tags a compiled pipeline
names and the tags pushed cannot drift apart.
"""

import os

from commerce_lm import __version__

# Set at compile time so one source tree can target any registry; `make images` pushes there.
REGISTRY = os.environ.get("COMMERCE_LM_REGISTRY", "us-docker.pkg.dev/commerce-lm/images")
TRAINING_IMAGE = f"{REGISTRY}/commerce-lm-train:{__version__}"
CPU_IMAGE = f"{REGISTRY}/commerce-lm-cpu:{__version__}"

# The unprivileged user both Dockerfiles create (`USER 10001:10001`); pods run as it.
IMAGE_UID = 10001

# Image -> its Dockerfile, relative to the repository root (the build context).
IMAGES = {
    TRAINING_IMAGE: "images/train.Dockerfile",
    CPU_IMAGE: "images/cpu.Dockerfile",
}

if __name__ == "__main__":
    for image, dockerfile in IMAGES.items():
        print(dockerfile, image)
