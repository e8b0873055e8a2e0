# Two commands do all set-up on a fresh clone: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_VERSION := 2.13.0
REGISTRY ?= us-docker.pkg.dev/commerce-lm/images
# DeepSpeed JIT-builds ops on first use; keep them in one cache the tests and demo share.
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test lint format compile benchmarks clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
ifneq ($(HAS_GPU),1)
	# Without a GPU take the CPU wheel first, so nothing below pulls a multi-GB CUDA build.
	$(PIP) install -q torch==$(TORCH_VERSION)
endif
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	touch $@

demo: install
	$(VENV)/bin/commerce-lm demo-data --output outputs/demo-data --seed 7 --items 1500
	$(VENV)/bin/commerce-lm run --config configs/demo.yaml --output outputs/demo

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

compile: install
	COMMERCE_LM_REGISTRY=$(REGISTRY) $(VENV)/bin/commerce-lm compile --output outputs/pipeline.yaml

clean:
	rm -rf outputs .cache .pytest_cache .import_linter_cache

# Container images: tags come from src/commerce_lm_components/images.py (package version), under
# $(REGISTRY).
# Each build runs the image's test stage first; docker or podman (images/build.sh). LOCAL_BASE=1
# builds the bases from Debian packages where no registry is reachable (README: Container images).
# Not part of `make test` or .ci/run: a cold build takes the better part of an hour.
LOCAL_BASE ?=
.PHONY: images images-push images-smoke
images: install
	REGISTRY=$(REGISTRY) LOCAL_BASE=$(LOCAL_BASE) PY=$(PY) images/build.sh

images-push: images
	REGISTRY=$(REGISTRY) PY=$(PY) images/build.sh push

images-smoke: install
	REGISTRY=$(REGISTRY) PY=$(PY) images/smoke.sh
