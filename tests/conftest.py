"""Shared fixtures: a small demo corpus, a tiny XLM-R trained on it, a run folder for configs/tiny.yaml."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from commerce_lm import config
from commerce_lm.demo import corpus as demo_data
from commerce_lm.demo.tiny_model import build_tiny_xlmr
from commerce_lm.steps import prepare_data
from tests.helpers.paths import REPO

# The GCS emulator fixtures (gcs_emulator, gcs_bucket) for any test that needs a bucket.
pytest_plugins = ["tests.fakes.gcs_emulator"]

DATASETS = Path(os.environ.get("COMMERCE_LM_DATASETS", REPO.parent / "shared" / "datasets"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tests' own cache folder (the default vector store lives there), never the user's."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["COMMERCE_LM_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo corpus (about 450 listings) as Parquet."""
    return Path(demo_data.write(tmp_path_factory.mktemp("demo") / "listings.parquet", n_items=300, seed=11))


@pytest.fixture(scope="session")
def tiny_xlmr(tmp_path_factory: pytest.TempPathFactory, demo_corpus: Path) -> Path:
    """A tiny random XLM-R whose tokenizer was trained on the demo corpus."""
    frame = pd.read_parquet(demo_corpus)
    texts = (frame["title"] + "\n" + frame["description"]).tolist()
    return build_tiny_xlmr(tmp_path_factory.mktemp("model") / "tiny-xlmr", texts, vocab_size=800)


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory, demo_corpus: Path, tiny_xlmr: Path) -> Path:
    """A folder holding configs/tiny.yaml next to the data and the model it names."""
    folder = tmp_path_factory.mktemp("tiny-run")
    shutil.copy(REPO / "configs" / "tiny.yaml", folder / "tiny.yaml")
    shutil.copy(demo_corpus, folder / "listings.parquet")
    shutil.copytree(tiny_xlmr, folder / "tiny-xlmr")
    return folder


@pytest.fixture(scope="session")
def tiny_cfg(tiny_run_dir: Path) -> config.RunConfig:
    """configs/tiny.yaml, loaded."""
    return config.load_config(tiny_run_dir / "tiny.yaml")


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory: pytest.TempPathFactory, tiny_cfg: config.RunConfig) -> Path:
    """prepare-data output of the tiny config."""
    out = tmp_path_factory.mktemp("prepared") / "prepared"
    prepare_data.run(tiny_cfg, str(out))
    return out
