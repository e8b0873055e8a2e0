"""extract-embeddings on a tiny XLM-R: exactness against plain HF, order, shards, reruns."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from commerce_lm.config import ExtractSection
from commerce_lm.demo.tiny_model import build_tiny_xlmr
from commerce_lm.embedding.encoder import Embedder, EncoderSettings
from commerce_lm.steps import extract_embeddings

WORDS = [
    "red",
    "blue",
    "shoe",
    "bag",
    "watch",
    "fake",
    "genuine",
    "leather",
    "cheap",
    "brand",
    "new",
    "sealed",
    "box",
    "ships",
    "fast",
    "refund",
]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    # Lengths from 1 to ~60 words so batches mix short and long documents (and some get truncated).
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 60))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("model")
    return str(build_tiny_xlmr(root / "xlmr", _texts(200, seed=1), vocab_size=500))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[str, list[str], list[str]]:
    root = tmp_path_factory.mktemp("prepared")
    texts = _texts(37)
    ids = [f"doc-{i:03d}" for i in range(len(texts))]
    # Ids are not sorted by anything the batching uses, so a reordering would show.
    random.Random(2).shuffle(ids)
    splits = [("train", "validation", "test")[i % 3] for i in range(len(texts))]
    table = pa.table({"id": ids, "text": texts, "lang": ["en"] * len(texts), "split": splits})
    pq.write_table(table, root / "corpus.parquet")
    return str(root), ids, texts


@pytest.fixture(scope="module")
def reference(tiny_model, prepared) -> tuple[np.ndarray, np.ndarray]:
    return _reference(tiny_model, prepared[2], max_length=24)


def _cfg(model: str, **embed) -> ExtractSection:
    return ExtractSection(model=model, embed={"max_length": 24, "token_budget": 96, **embed})


def _reference(model: str, texts: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """[CLS] and mean vectors from a plain, unbatched, unpadded HF forward pass."""
    tokenizer = AutoTokenizer.from_pretrained(model)
    encoder = AutoModel.from_pretrained(model).eval()
    cls, mean = [], []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")["input_ids"]
            hidden = encoder(input_ids=ids).last_hidden_state[0]
            cls.append(hidden[0].numpy())
            mean.append(hidden.mean(dim=0).numpy())
    return np.stack(cls), np.stack(mean)


def test_cls_vectors_match_unbatched_forward_in_corpus_order(tiny_model, prepared, reference, tmp_path):
    prepared_dir, ids, texts = prepared
    metrics = extract_embeddings.run(_cfg(tiny_model), tiny_model, prepared_dir, str(tmp_path / "out"))
    result = extract_embeddings.load_embeddings(str(tmp_path / "out"))

    assert metrics["count"] == len(texts) and metrics["docs_per_second"] > 0
    assert result.ids == ids
    assert result.splits == [("train", "validation", "test")[i % 3] for i in range(len(texts))]
    assert result.vectors.dtype == np.float32 and result.vectors.shape == (len(texts), 32)
    # The budget of 96 tokens forces many batches padded to different lengths.
    assert metrics["padded_tokens"] > metrics["tokens"]
    np.testing.assert_allclose(result.vectors, reference[0], atol=1e-5, rtol=1e-4)
    manifest = result.manifest
    assert manifest["pooling"] == "cls" and manifest["dim"] == 32 and manifest["count"] == len(texts)
    assert manifest["encoder_checksum"] == extract_embeddings.models.model_checksum(tiny_model)
    assert (tmp_path / "out" / "config.json").is_file()
    assert (tmp_path / "out" / "embeddings" / "part-00000-of-00001.parquet").is_file()


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "hf-forward"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_embedder_matches_hf_with_either_forward(tiny_model, prepared, reference, fast_path, pooling):
    _, _, texts = prepared
    settings = EncoderSettings(max_length=24, token_budget=64, pooling=pooling, fast_path=fast_path)
    embedder = Embedder(tiny_model, settings)
    assert (embedder.fast is not None) == fast_path  # XLM-R is a supported architecture
    cls, mean = reference
    np.testing.assert_allclose(embedder.embed(texts), cls if pooling == "cls" else mean, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "hf-forward"])
def test_mean_pooling_ignores_padding(tiny_model, prepared, fast_path):
    _, _, texts = prepared
    short, long = "red shoe", texts[max(range(len(texts)), key=lambda i: len(texts[i]))]
    settings = EncoderSettings(max_length=24, token_budget=10_000, pooling="mean", fast_path=fast_path)
    embedder = Embedder(tiny_model, settings)
    together = embedder.embed([short, long])  # one batch: the short text is padded to the long one
    alone = embedder.embed([short])
    _, reference = _reference(tiny_model, [short, long], max_length=24)
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)
    np.testing.assert_allclose(together, reference, atol=1e-5, rtol=1e-4)


def test_shards_concatenate_to_the_full_set(tiny_model, prepared, tmp_path):
    prepared_dir, ids, _ = prepared
    cfg = _cfg(tiny_model)
    extract_embeddings.run(cfg, tiny_model, prepared_dir, str(tmp_path / "full"))
    shard_dirs = [str(tmp_path / f"shard{i}") for i in range(3)]
    for shard, shard_dir in enumerate(shard_dirs):
        extract_embeddings.run(cfg, tiny_model, prepared_dir, shard_dir, shard=shard, num_shards=3)

    metrics = extract_embeddings.gather(shard_dirs[::-1], prepared_dir, str(tmp_path / "gathered"))
    full = extract_embeddings.load_embeddings(str(tmp_path / "full"))
    gathered = extract_embeddings.load_embeddings(str(tmp_path / "gathered"))
    assert metrics["count"] == len(ids) and metrics["shards"] == 3
    assert gathered.ids == ids
    np.testing.assert_allclose(gathered.vectors, full.vectors, atol=1e-6)

    with pytest.raises(ValueError, match=r"missing ids \d+: 'doc-"):
        extract_embeddings.gather(shard_dirs[:2], prepared_dir, str(tmp_path / "bad"))
    with pytest.raises(ValueError, match="duplicate ids"):
        extract_embeddings.gather([*shard_dirs, shard_dirs[1]], prepared_dir, str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()


def test_rerun_skips_a_complete_shard_and_redoes_a_changed_one(tiny_model, prepared, tmp_path):
    prepared_dir, _, _ = prepared
    out = tmp_path / "out"
    first = extract_embeddings.run(_cfg(tiny_model), tiny_model, prepared_dir, str(out))
    part = out / "embeddings" / "part-00000-of-00001.parquet"
    stamp = part.stat().st_mtime_ns

    again = extract_embeddings.run(_cfg(tiny_model), tiny_model, prepared_dir, str(out))
    assert again == first and part.stat().st_mtime_ns == stamp

    extract_embeddings.run(_cfg(tiny_model, pooling="mean"), tiny_model, prepared_dir, str(out))
    assert part.stat().st_mtime_ns != stamp
    assert extract_embeddings.load_embeddings(str(out)).manifest["pooling"] == "mean"


def test_float16_output_reads_back_as_float32(tiny_model, prepared, tmp_path):
    prepared_dir, _, _ = prepared
    extract_embeddings.run(_cfg(tiny_model, dtype="float16"), tiny_model, prepared_dir, str(tmp_path / "h"))
    extract_embeddings.run(_cfg(tiny_model), tiny_model, prepared_dir, str(tmp_path / "f"))
    part = tmp_path / "h" / "embeddings" / "part-00000-of-00001.parquet"
    assert pq.read_schema(part).field("vector").type == pa.list_(pa.float16(), 32)
    half = extract_embeddings.load_embeddings(str(tmp_path / "h"))
    full = extract_embeddings.load_embeddings(str(tmp_path / "f"))
    assert half.vectors.dtype == np.float32 and half.manifest["dtype"] == "float16"
    np.testing.assert_allclose(half.vectors, full.vectors, atol=2e-3, rtol=2e-3)
