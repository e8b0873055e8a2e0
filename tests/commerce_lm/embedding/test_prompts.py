"""Prompts where the encoder declares them: extraction, the store key, fine-tuning data and export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from commerce_lm.config import ExtractSection, FinetuneConfig
from commerce_lm.demo.tiny_model import build_tiny_xlmr
from commerce_lm.embedding.encoder import Embedder, EncoderSettings
from commerce_lm.embedding.vector_store import StoreError, StoreKey, VectorStore, text_digests
from commerce_lm.modelfiles import st_files
from commerce_lm.steps import extract_embeddings, finetune_encoder
from commerce_lm.training import data
from commerce_lm.training.pooled_model import ENCODER_PREFIX
from tests.helpers.store import fake_vectors

TEXTS = ["red shoe", "blue bag sealed", "genuine leather watch", "cheap fake brand new", "ships fast"]
PROMPTS = {"query": "query: ", "passage": "passage: "}


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> str:
    """A tiny XLM-R that declares no prompt (its tokenizer knows the prompt words, though)."""
    words = [*TEXTS, "query: passage: red shoe"] * 20
    return str(build_tiny_xlmr(tmp_path_factory.mktemp("plain") / "xlmr", words, vocab_size=200))


@pytest.fixture(scope="module")
def prompted(plain, tmp_path_factory) -> str:
    """The same weights, declaring e5's prompts with ``passage`` as the default."""
    folder = tmp_path_factory.mktemp("prompted") / "xlmr"
    shutil.copytree(plain, folder)
    st_files.write_sentence_transformers_files(str(folder), "mean", 32, 24, PROMPTS, "passage")
    return str(folder)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("prepared")
    table = pa.table({"id": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS, "split": ["test"] * len(TEXTS)})
    pq.write_table(table, root / "corpus.parquet")
    return str(root)


def test_the_setting_picks_the_declared_default_none_or_a_named_prompt(plain, prompted):
    assert st_files.prompt(prompted, "auto") == "passage: "
    assert st_files.prompt(prompted, "query") == "query: "
    assert st_files.prompt(prompted, "none") == ""
    assert st_files.prompt(plain, "auto") == ""  # declares nothing: no prompt
    with pytest.raises(ValueError, match="declares no prompt 'title'"):
        st_files.prompt(prompted, "title")


def test_embedder_puts_the_prompt_before_every_text(prompted):
    settings = EncoderSettings(max_length=24, pooling="mean", prompt="passage: ")
    with_prompt = Embedder(prompted, settings)
    without = Embedder(prompted, EncoderSettings(max_length=24, pooling="mean"))
    assert with_prompt.tokenize(TEXTS) == without.tokenize(["passage: " + t for t in TEXTS])
    np.testing.assert_allclose(with_prompt.embed(TEXTS), without.embed(["passage: " + t for t in TEXTS]), atol=1e-6)


def test_extraction_applies_the_declared_prompt_and_none_disables_it(prompted, prepared, tmp_path):
    store = str(tmp_path / "store")

    def extract(out: str, prompt: str) -> tuple[dict, np.ndarray]:
        section = ExtractSection(model=prompted, embed={"max_length": 24, "store": store, "prompt": prompt})
        metrics = extract_embeddings.run(section, prompted, prepared, str(tmp_path / out))
        return metrics, extract_embeddings.load_embeddings(str(tmp_path / out)).vectors

    auto_metrics, auto = extract("auto", "auto")
    none_metrics, none = extract("none", "none")
    assert auto_metrics["prompt"] == "passage: " and none_metrics["prompt"] == ""
    # Each setting embedded every text itself: vectors with and without the prompt never mix.
    assert auto_metrics["embedded"] == none_metrics["embedded"] == len(TEXTS)
    reference = Embedder(prompted, EncoderSettings(max_length=24, pooling="mean"))
    np.testing.assert_allclose(auto, reference.embed(["passage: " + t for t in TEXTS]), atol=1e-5)
    np.testing.assert_allclose(none, reference.embed(TEXTS), atol=1e-5)
    manifest = json.loads((tmp_path / "auto" / "manifest.json").read_text())
    assert manifest["prompt"] == "passage: "


def test_the_prompt_is_part_of_the_store_key(tmp_path):
    plain_key, prompted_key = StoreKey("abc", "mean", 32), StoreKey("abc", "mean", 32, "passage: ")
    assert plain_key.folder() == "abc/mean-32"  # stores made before prompts keep their folder
    assert prompted_key.folder() != plain_key.folder()
    store = VectorStore(str(tmp_path))
    digests = np.sort(text_digests(TEXTS))  # lookup takes sorted unique digests, as plan() gives it
    with store.writer(prompted_key, 8) as writer:
        writer.add(digests, fake_vectors(digests))
    assert store.lookup(plain_key, digests)[0].sum() == 0
    assert store.lookup(prompted_key, digests)[0].all()
    # A segment moved under another prompt's folder is refused, naming the file.
    target = tmp_path / plain_key.folder() / "segments"
    shutil.copytree(tmp_path / prompted_key.folder() / "segments", target)
    with pytest.raises(StoreError, match="made with prompt 'passage: ', not ''"):
        store.lookup(plain_key, digests)


def test_finetune_data_gets_the_prompt_and_the_export_declares_the_prompts(prompted, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(prompted)
    frame = pd.DataFrame({"id": ["a", "b"], "text": TEXTS[:2], "label": [0, 1]})
    split = data.make_split(tokenizer, frame, 24, "passage: ")
    expected = tokenizer(["passage: " + t for t in TEXTS[:2]])["input_ids"]
    assert [ids.tolist() for ids in split.input_ids] == expected
    assert FinetuneConfig().prompt == "auto"

    encoder = AutoModel.from_pretrained(prompted)
    state = {ENCODER_PREFIX + k: v for k, v in encoder.state_dict().items()}
    trained = SimpleNamespace(config=encoder.config, result=SimpleNamespace(best_state=state), tokenizer=tokenizer)
    finetune_encoder._export(tmp_path / "model", trained, FinetuneConfig(pooling="cls", max_length=24), prompted)
    assert st_files.declared_prompts(str(tmp_path / "model")) == (PROMPTS, "passage")
    assert st_files.declared_pooling(str(tmp_path / "model")) == "cls"
    assert Path(tmp_path / "model" / "model.safetensors").is_file()
    # Trained without a prompt: the prompts are still declared, but none is the default.
    settings = FinetuneConfig(pooling="cls", max_length=24, prompt="none")
    finetune_encoder._export(tmp_path / "plain-model", trained, settings, prompted)
    assert st_files.declared_prompts(str(tmp_path / "plain-model")) == (PROMPTS, None)
    assert st_files.prompt(str(tmp_path / "plain-model"), "auto") == ""
