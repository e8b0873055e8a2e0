"""The vector store keyed by encoder and text: hits, misses, killed and concurrent writers, wrong keys."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from commerce_lm import models
from commerce_lm.config import ExtractSection
from commerce_lm.demo.tiny_model import build_tiny_xlmr
from commerce_lm.embedding import store_segments, vector_store
from commerce_lm.embedding.encoder import Embedder, EncoderSettings
from commerce_lm.embedding.vector_store import StoreError, StoreKey, VectorStore, text_digests
from commerce_lm.steps import extract_embeddings
from tests.helpers.paths import REPO
from tests.helpers.store import KEY, fake_vectors

WORDS = ["red", "blue", "shoe", "bag", "watch", "fake", "genuine", "leather", "cheap", "brand", "new", "sealed"]


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 30))) + f" #{seed}-{i}" for i in range(n)]


def _prepared(root: Path, texts: list[str]) -> str:
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"doc-{i:04d}" for i in range(len(texts))]
    splits = [("train", "validation", "test")[i % 3] for i in range(len(texts))]
    pq.write_table(
        pa.table({"id": ids, "text": texts, "lang": ["en"] * len(texts), "split": splits}), root / "corpus.parquet"
    )
    return str(root)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    return str(build_tiny_xlmr(tmp_path_factory.mktemp("model") / "xlmr", _texts(150, seed=1), vocab_size=400))


def _cfg(model: str, store: Path, **embed) -> ExtractSection:
    return ExtractSection(model=model, embed={"max_length": 32, "token_budget": 256, "store": str(store), **embed})


def test_second_extraction_embeds_nothing_and_a_grown_corpus_only_the_new_texts(tiny_model, tmp_path):
    store = tmp_path / "store"
    old, new = _texts(40, seed=2), _texts(7, seed=3)
    cfg = _cfg(tiny_model, store)
    first = extract_embeddings.run(cfg, tiny_model, _prepared(tmp_path / "p1", old), str(tmp_path / "e1"))
    assert (first["embedded"], first["reused"]) == (40, 0)

    # Another output folder (another run): every text is found, nothing is embedded.
    again = extract_embeddings.run(cfg, tiny_model, _prepared(tmp_path / "p1", old), str(tmp_path / "e2"))
    assert (again["embedded"], again["reused"], again["tokens"]) == (0, 40, 0)
    assert again["docs_per_second"] is None  # nothing embedded, no throughput to claim
    a, b = (extract_embeddings.load_embeddings(str(tmp_path / e)) for e in ("e1", "e2"))
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.vectors, b.vectors)

    # The corpus grows (and is reordered): only the new texts go through the encoder.
    grown = new[:3] + old[::-1] + new[3:]
    third = extract_embeddings.run(cfg, tiny_model, _prepared(tmp_path / "p2", grown), str(tmp_path / "e3"))
    assert (third["embedded"], third["reused"], third["count"]) == (7, 40, 47)
    c = extract_embeddings.load_embeddings(str(tmp_path / "e3"))
    assert len(c.ids) == 47 and len(set(c.ids)) == 47
    fresh = Embedder(tiny_model, EncoderSettings(max_length=32, pooling="cls")).embed(grown)
    np.testing.assert_allclose(c.vectors, fresh, atol=1e-5, rtol=1e-4)

    # Another max length is another key: nothing is reused across it.
    other = extract_embeddings.run(
        _cfg(tiny_model, store, max_length=16), tiny_model, _prepared(tmp_path / "p1", old), str(tmp_path / "e4")
    )
    assert (other["embedded"], other["reused"]) == (40, 0)


def test_repeated_texts_are_embedded_once(tiny_model, tmp_path):
    texts = _texts(5, seed=4) * 3
    metrics = extract_embeddings.run(
        _cfg(tiny_model, tmp_path / "store"), tiny_model, _prepared(tmp_path / "p", texts), str(tmp_path / "e")
    )
    assert (metrics["count"], metrics["embedded"]) == (15, 5)
    vectors = extract_embeddings.load_embeddings(str(tmp_path / "e")).vectors
    np.testing.assert_array_equal(vectors[:5], vectors[5:10])


def test_lookup_hits_and_misses(tmp_path):
    store = VectorStore(str(tmp_path))
    stored = text_digests(_texts(30, seed=5))
    with store.writer(KEY, 8) as writer:
        writer.add(stored[:20], fake_vectors(stored[:20]))
        writer.flush()
        writer.add(stored[20:], fake_vectors(stored[20:]))
    assert len(store.segments(KEY)) == 2
    wanted = np.unique(np.concatenate([stored[::3], text_digests(["never stored"])]))
    found, vectors = store.lookup(KEY, wanted)
    assert found.sum() == len(stored[::3]) and not found[wanted == text_digests(["never stored"])[0]].any()
    np.testing.assert_array_equal(vectors[found], fake_vectors(wanted[found]))
    assert store.lookup(StoreKey("abc123", "mean", 32), wanted)[1] is None  # another pooling: all misses


def test_a_segment_of_another_encoder_is_refused_naming_both(tmp_path):
    store = VectorStore(str(tmp_path))
    digests = text_digests(_texts(4, seed=6))
    with store.writer(KEY, 8) as writer:
        writer.add(digests, fake_vectors(digests))
    other = StoreKey("def456", "cls", 32)
    target = Path(store.segments(KEY)[0].replace("abc123", "def456"))
    target.parent.mkdir(parents=True)
    shutil.copy(store.segments(KEY)[0], target)
    with pytest.raises(StoreError, match="encoder abc123, but sits under encoder def456"):
        store.lookup(other, np.unique(digests))


def test_a_segment_with_a_flipped_byte_is_named_moved_aside_and_its_texts_embedded_again(tmp_path, caplog):
    store = VectorStore(str(tmp_path))
    digests = np.unique(text_digests(_texts(6, seed=8)))
    vectors = np.random.default_rng(0).standard_normal((len(digests), 8)).astype(np.float32)
    with store.writer(KEY, 8) as writer:
        writer.add(digests, vectors)
    (segment,) = store.segments(KEY)
    raw = bytearray(Path(segment).read_bytes())
    at = raw.index(vectors[2].tobytes())  # the third vector's bytes, as written
    raw[at + 1] ^= 0x10
    Path(segment).write_bytes(bytes(raw))
    assert pq.read_table(segment).num_rows == len(digests)  # still a readable Parquet file
    found, _ = store.lookup(KEY, digests)
    assert not found.any()  # nothing of it is served: every text counts as missing, to embed again
    assert segment in caplog.text and "corrupt" in caplog.text
    assert store.segments(KEY) == [] and Path(segment + vector_store.CORRUPT_SUFFIX).read_bytes() == bytes(raw)
    with store.writer(KEY, 8) as writer:  # embedded again: served whole from the new segment
        writer.add(digests, vectors)
    found, again = store.lookup(KEY, digests)
    assert found.all()
    np.testing.assert_array_equal(again, vectors)


_WRITER = """
import sys
from commerce_lm.embedding import store_segments, vector_store
from tests.helpers.paths import REPO
from tests.helpers.store import KEY, fake_vectors
store_segments.SEGMENT_BYTES = 8 * 4 * 1024  # a segment every 1024 vectors of 8 values
store = vector_store.VectorStore(sys.argv[1])
start = int(sys.argv[2])
with store.writer(KEY, 8) as writer:
    for i in range(start, start + int(sys.argv[3]), 256):
        digests = vector_store.text_digests([f"text {j}" for j in range(i, i + 256)])
        writer.add(digests, fake_vectors(digests))
        print(i, flush=True)
"""


def _writer(root: Path, start: int, count: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the child imports tests.helpers.store
    command = [sys.executable, "-c", _WRITER, str(root), str(start), str(count)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


def _check_store(root: Path) -> tuple[int, np.ndarray]:
    """Every published segment is whole and holds the right vectors; returns (segments, digests)."""
    store = VectorStore(str(root))
    digests = []
    for segment in store.segments(KEY):
        table = pq.read_table(segment)
        got = np.asarray(table.column("digest").to_pylist(), dtype="S32")
        np.testing.assert_array_equal(store_segments.read_vectors(table.column("vector")), fake_vectors(got))
        digests.append(got)
    return len(store.segments(KEY)), np.unique(np.concatenate(digests)) if digests else np.empty(0, "S32")


def test_concurrent_writers_never_corrupt_the_store(tmp_path):
    # Four writers at once, with overlapping texts (shards of two runs over one corpus).
    writers = [_writer(tmp_path, start, 2048) for start in (0, 1024, 2048, 0)]
    for process in writers:
        assert process.wait(timeout=300) == 0
    segments, digests = _check_store(tmp_path)
    assert segments == 4 * 2
    everything = np.unique(text_digests([f"text {j}" for j in range(2048 + 2048)]))
    np.testing.assert_array_equal(digests, everything)
    found, vectors = VectorStore(str(tmp_path)).lookup(KEY, everything)
    assert found.all()
    np.testing.assert_array_equal(vectors, fake_vectors(everything))


def test_a_killed_writer_leaves_nothing_a_reader_trusts(tmp_path):
    process = _writer(tmp_path, 0, 10**6)
    for _ in range(6):  # let it publish a few segments, then kill it wherever it is
        process.stdout.readline()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    segments, digests = _check_store(tmp_path)
    assert segments >= 1
    # What a kill during a write leaves: a hidden temporary file, which no reader lists.
    folder = Path(VectorStore(str(tmp_path)).segments(KEY)[0]).parent
    partial = folder / ".20990101T000000-cut.parquet.0123.tmp"
    partial.write_bytes(Path(VectorStore(str(tmp_path)).segments(KEY)[0]).read_bytes()[:100])
    assert _check_store(tmp_path)[0] == segments
    found, _ = VectorStore(str(tmp_path)).lookup(KEY, digests)
    assert found.all()
    # The next writer clears temporary files old enough to be a dead writer's.
    old = time.time() - 2 * store_segments.STALE_SECONDS
    os.utime(partial, (old, old))
    VectorStore(str(tmp_path)).writer(KEY, 8)
    assert not partial.exists()


def test_store_on_gcs_with_concurrent_writers(gcs_bucket):
    root = f"gs://{gcs_bucket}/vectors"
    store = VectorStore(root)
    texts = _texts(50, seed=7)
    digests = text_digests(texts)
    for half in (digests[:30], digests[20:]):  # two writers, overlapping
        with store.writer(KEY, 8) as writer:
            writer.add(half, fake_vectors(half))
    assert len(store.segments(KEY)) == 2 and all(s.startswith(root) for s in store.segments(KEY))
    wanted = np.unique(digests)
    found, vectors = store.lookup(KEY, wanted)
    assert found.all()
    np.testing.assert_array_equal(vectors, fake_vectors(wanted))
    # A published segment is never replaced: the upload asks for generation 0.
    with pytest.raises(FileExistsError):
        from commerce_lm import storage

        storage.write_bytes(store.segments(KEY)[0], b"not a segment")


def test_default_store_lives_in_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COMMERCE_LM_CACHE", str(tmp_path))
    assert VectorStore().root == str(models.cache_root() / "embeddings") == str(tmp_path / "embeddings")
