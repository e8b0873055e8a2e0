"""Container images the components run in, tagged with the package version (the one place)."""

import os

from commerce_lm import __version__

# Set at compile time so one source tree can target any registry; `make images` pushes there.
REGISTRY = os.environ.get("COMMERCE_LM_REGISTRY", "us-docker.pkg.dev/commerce-lm/images")
TRAINING_IMAGE = f"{REGISTRY}/commerce-lm-train:{__version__}"
CPU_IMAGE = f"{REGISTRY}/commerce-lm-cpu:{__version__}"
