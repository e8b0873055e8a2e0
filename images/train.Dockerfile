# syntax=docker/dockerfile:1.7
# CUDA training image: PyTorch, DeepSpeed and commerce-lm (fine-tuning, embedding, baselines).
# Build from the repository root with `make images` (images/build.sh).
# Stages: deps (pinned dependencies) -> test (the CPU test suite must pass) -> runtime.
# Layers go from what changes least to what changes most: a change to our code alone rebuilds only
# the layers after its COPY (README.md: rebuild times). Every layer but CUDA also builds on plain
# Debian with the CPU wheel of torch (`make images LOCAL_BASE=1`: CUDA_IMAGE, PYTHON_VERSION and
# TORCH_INDEX as build arguments).

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04
# The base's own Python (Ubuntu 24.04: 3.12, Debian 12: 3.11).
ARG PYTHON_VERSION=3.12
# Keep in step with pyproject.toml / the Makefile (tests/images/test_images.py checks it).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128

FROM ${CUDA_IMAGE} AS deps
ARG PYTHON_VERSION
ARG TORCH_VERSION
ARG TORCH_INDEX
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# The devel image keeps nvcc: DeepSpeed JIT-builds its fused ops on first use.
RUN apt-get update \
 && apt-get install -y --no-install-recommends "python${PYTHON_VERSION}" "python${PYTHON_VERSION}-venv" "python${PYTHON_VERSION}-dev" git ninja-build \
 && rm -rf /var/lib/apt/lists/* \
 && "python${PYTHON_VERSION}" -m venv /opt/venv
WORKDIR /src
# Dependencies first (a layer that changes only with pyproject.toml / constraints.txt): the package
# skeleton images/skeleton.py makes from pyproject.toml is enough for pip to resolve them; the package
# itself is installed in the runtime stage.
COPY pyproject.toml constraints.txt images/skeleton.py ./
COPY src/commerce_lm/__init__.py src/commerce_lm/
RUN python skeleton.py \
 && pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" \
 && pip install -c constraints.txt ".[pipelines]" \
 && pip uninstall -y commerce-lm

FROM deps AS test
# The CPU tests run against the exact dependency set the runtime ships; the test tools go in before
# the code, so a code change re-runs the tests without reinstalling them.
RUN pip install -c constraints.txt ".[dev]" && pip uninstall -y commerce-lm
COPY . /src
RUN pip install -c constraints.txt --no-deps -e . \
 && HOME=/tmp CUDA_VISIBLE_DEVICES="" python -m pytest -q -p no:cacheprovider \
 && touch /tmp/tests-passed

FROM deps AS runtime
# The skeleton's install left build/ in /src: setuptools would ship its empty files, newer than the
# code copied in below, instead of the code.
RUN rm -rf /src \
 && groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
# Depending on the test stage makes BuildKit run it: no image without passing tests.
COPY --from=test /tmp/tests-passed /opt/tests-passed
COPY pyproject.toml constraints.txt README.md /src/
COPY src /src/src
RUN pip install -c /src/constraints.txt --no-deps /src && rm -rf /src
# Read-only root filesystem: every cache and HOME live under /tmp (an emptyDir in the pod);
# credentials come from Workload Identity at run time, never from the image.
ENV HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/.cache/huggingface \
    TORCH_EXTENSIONS_DIR=/tmp/.cache/torch_extensions \
    TRITON_CACHE_DIR=/tmp/.cache/triton \
    MPLCONFIGDIR=/tmp/.cache/matplotlib \
    COMMERCE_LM_CACHE=/tmp/.cache/commerce-lm \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOKENIZERS_PARALLELISM=false
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT []
CMD ["commerce-lm", "--help"]
