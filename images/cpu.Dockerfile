# syntax=docker/dockerfile:1.7
# Slim CPU image: prepare-data, train-heads, evaluate-knn, publish-bundle, build-report.
# Build from the repository root with `make images` (images/build.sh).
# Stages: deps (pinned dependencies) -> test (the CPU test suite must pass) -> runtime.
# Layers go from what changes least to what changes most: a change to our code alone rebuilds only
# the layers after its COPY (README.md: rebuild times).

ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm
# Keep in step with pyproject.toml / the Makefile (tests/images/test_images.py checks it).
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
# Dependencies first, from pyproject.toml alone; the CPU wheel of torch keeps the image small (no CUDA
# libraries). images/skeleton.py makes the empty packages pip needs to resolve them.
COPY pyproject.toml constraints.txt images/skeleton.py ./
COPY src/commerce_lm/__init__.py src/commerce_lm/
RUN python skeleton.py \
 && pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" \
 && pip install -c constraints.txt ".[pipelines]" \
 && pip uninstall -y commerce-lm

FROM deps AS test
# The test tools before the code, so a code change re-runs the tests without reinstalling them.
RUN pip install -c constraints.txt ".[dev]" && pip uninstall -y commerce-lm
COPY . /src
RUN pip install -c constraints.txt --no-deps -e . \
 && HOME=/tmp python -m pytest -q -p no:cacheprovider \
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
