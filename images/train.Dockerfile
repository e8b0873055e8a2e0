# syntax=docker/dockerfile:1.7
# CUDA training image: PyTorch, DeepSpeed and commerce-lm (fine-tuning, embedding, baselines).
# Build from the repository root (`make images` does):
#   docker build -f images/train.Dockerfile -t REGISTRY/commerce-lm-train:VERSION .
# Stages: deps (pinned dependencies) -> test (the CPU test suite must pass) -> runtime.

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-devel-ubuntu24.04
# Keep in step with pyproject.toml / the Makefile (tests/test_images.py checks it).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128

FROM ${CUDA_IMAGE} AS deps
ARG TORCH_VERSION
ARG TORCH_INDEX
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# The devel image keeps nvcc: DeepSpeed JIT-builds its fused ops on first use.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 python3.12-venv python3.12-dev git ninja-build \
 && rm -rf /var/lib/apt/lists/* \
 && python3.12 -m venv /opt/venv
WORKDIR /src
# Dependencies first (a layer that changes only with pyproject.toml / constraints.txt): the package
# skeleton is enough for pip to resolve them; the package itself is installed in the runtime stage.
COPY pyproject.toml constraints.txt README.md ./
COPY src/commerce_lm/__init__.py src/commerce_lm/
# Every package pyproject.toml lists must exist (tests/test_images.py keeps this list in step).
RUN for package in cli config steps steps/build_report steps/prepare_data steps/publish_bundle training training/objectives embedding bundle storage launch demo data; do \
        mkdir -p "src/commerce_lm/$package" && touch "src/commerce_lm/$package/__init__.py"; \
    done \
 && mkdir -p components pipelines && touch components/__init__.py pipelines/__init__.py \
 && pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" \
 && pip install -c constraints.txt ".[pipelines]" \
 && pip uninstall -y commerce-lm

FROM deps AS test
# The CPU tests run against the exact dependency set the runtime ships.
COPY . /src
RUN pip install -c constraints.txt -e ".[dev]" \
 && HOME=/tmp CUDA_VISIBLE_DEVICES="" python -m pytest -q -p no:cacheprovider \
 && touch /tmp/tests-passed

FROM deps AS runtime
# Depending on the test stage makes BuildKit run it: no image without passing tests.
COPY --from=test /tmp/tests-passed /opt/tests-passed
COPY src /src/src
COPY components /src/components
COPY pipelines /src/pipelines
COPY pyproject.toml constraints.txt README.md /src/
RUN pip install -c /src/constraints.txt --no-deps /src && rm -rf /src \
 && groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
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
