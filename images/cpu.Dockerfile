# syntax=docker/dockerfile:1.7
# Slim CPU image: prepare-data, train-heads, evaluate-knn, build-report.
# Build from the repository root (`make images` does):
#   docker build -f images/cpu.Dockerfile -t REGISTRY/commerce-lm-cpu:VERSION .
# Stages: deps (pinned dependencies) -> test (the CPU test suite must pass) -> runtime.

ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm
# Keep in step with pyproject.toml / the Makefile (tests/test_images.py checks it).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

FROM ${PYTHON_IMAGE} AS deps
ARG TORCH_VERSION
ARG TORCH_INDEX
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first; the CPU wheel of torch keeps the image small (no CUDA libraries).
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
COPY . /src
RUN pip install -c constraints.txt -e ".[dev]" \
 && HOME=/tmp python -m pytest -q -p no:cacheprovider \
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
# Read-only root filesystem: HOME and caches under /tmp (an emptyDir); no credentials in the image.
ENV HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/.cache/huggingface \
    MPLCONFIGDIR=/tmp/.cache/matplotlib \
    COMMERCE_LM_CACHE=/tmp/.cache/commerce-lm \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOKENIZERS_PARALLELISM=false
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT []
CMD ["commerce-lm", "--help"]
