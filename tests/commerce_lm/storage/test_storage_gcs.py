"""storage.py against a real GCS emulator: round trips, preconditions, completion markers."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from commerce_lm import storage
from commerce_lm.names import COMPLETE_MARKER
from tests.fakes import gcs_emulator as emulator

# The emulator's fixtures (a conftest.py may register the module as a plugin instead).
gcs_emulator = emulator.gcs_emulator
gcs_bucket = emulator.gcs_bucket


def _tree(root: Path) -> dict[str, bytes]:
    return {
        "/".join(p.relative_to(root).parts): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != COMPLETE_MARKER
    }


def _model_folder(root: Path) -> Path:
    """A Hugging Face-shaped folder with one weights file big enough for a chunked resumable upload."""
    from safetensors.numpy import save_file

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    weights = {"embeddings.weight": rng.standard_normal((storage.RESUMABLE_THRESHOLD // 4 + 4096,)).astype("f4")}
    save_file(weights, str(root / "model.safetensors"))
    (root / "config.json").write_text(json.dumps({"model_type": "xlm-roberta", "hidden_size": 32}))
    (root / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "Unigram"}}))
    (root / "nested").mkdir()
    (root / "nested" / "notes.txt").write_text("x" * 1000)
    return root


def test_model_folder_round_trip(gcs_bucket: str, tmp_path: Path) -> None:
    source = _model_folder(tmp_path / "model")
    assert (source / "model.safetensors").stat().st_size > storage.RESUMABLE_THRESHOLD
    uri = f"gs://{gcs_bucket}/runs/r1/finetune/model"
    with storage.staged_dir(uri, "test-step") as stage:
        for rel, data in _tree(source).items():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            (stage / rel).write_bytes(data)
        assert not storage.is_complete(uri), "nothing is published before the block ends"
    assert storage.is_complete(uri)
    marker = storage.read_json(storage.join(uri, COMPLETE_MARKER))
    assert sorted(marker["files"]) == sorted(_tree(source))
    assert storage.list_files(uri) == sorted(storage.join(uri, rel) for rel in [*_tree(source), COMPLETE_MARKER])
    with storage.local_copy(uri) as local:
        assert _tree(local) == _tree(source)
    with storage.local_copy(storage.join(uri, "config.json")) as one:
        assert one.read_bytes() == (source / "config.json").read_bytes()


def test_sharded_embeddings_round_trip(gcs_bucket: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    uri = f"gs://{gcs_bucket}/runs/r1/embed-finetuned"
    parts, dim = 4, 16
    expected = []
    with storage.staged_dir(uri, "test-step") as stage:
        (stage / "embeddings").mkdir()
        for shard in range(parts):
            ids = [f"doc{shard}-{i}" for i in range(50)]
            vectors = rng.standard_normal((50, dim)).astype("f4")
            table = pa.table(
                {
                    "id": ids,
                    "split": ["train"] * 50,
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dim),
                }
            )
            pq.write_table(table, stage / "embeddings" / f"part-{shard:05d}-of-{parts:05d}.parquet")
            expected.append(table)
        storage.write_json(stage / "manifest.json", {"dim": dim, "count": parts * 50, "dtype": "float32"})
    files = [f for f in storage.list_files(storage.join(uri, "embeddings")) if "part-" in f]
    assert len(files) == parts
    got = pa.concat_tables(pq.read_table(pa.BufferReader(storage.read_bytes(f))) for f in files)
    assert got.equals(pa.concat_tables(expected))
    with storage.local_copy(uri) as local:
        back = pq.read_table(local / "embeddings")
        assert back.num_rows == parts * 50
    with contextlib.suppress(ImportError):
        from commerce_lm.steps.extract_embeddings import load_embeddings  # the library's own reader

        loaded = load_embeddings(uri)
        assert len(loaded.ids) == parts * 50


def test_write_bytes_never_silently_overwrites(gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/state/metrics.json"
    storage.write_bytes(uri, b"first")
    with pytest.raises(FileExistsError, match=uri):
        storage.write_bytes(uri, b"second")
    data, generation = storage.read_versioned(uri)
    assert data == b"first" and generation
    storage.write_bytes(uri, b"second", generation=generation)  # the generation we read: allowed
    with pytest.raises(storage.ConcurrentWriteError, match=uri):
        storage.write_bytes(uri, b"lost update", generation=generation)  # stale: refused
    assert storage.read_bytes(uri) == b"second"
    storage.write_json(uri, {"v": 3}, overwrite=True)
    assert storage.read_json(uri) == {"v": 3}
    storage.write_bytes(uri, json.dumps({"v": 3}, indent=2, sort_keys=True).encode() + b"\n")
    # ... the same bytes again is no lost update (a retried write whose answer was lost looks so).


def test_staged_dir_replaces_an_earlier_version_and_marks_it(gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/prepared"
    with storage.staged_dir(uri, "test-step") as stage:
        (stage / "a.txt").write_text("a1")
        (stage / "old.txt").write_text("stale")
    first = storage.read_json(storage.join(uri, COMPLETE_MARKER))
    with storage.staged_dir(uri, "test-step") as stage:
        (stage / "a.txt").write_text("a2")
        (stage / "sub").mkdir()
        (stage / "sub" / "b.txt").write_text("b2")
    assert storage.list_files(uri) == [storage.join(uri, n) for n in (COMPLETE_MARKER, "a.txt", "sub/b.txt")]
    assert storage.read_bytes(storage.join(uri, "a.txt")) == b"a2"
    second = storage.read_json(storage.join(uri, COMPLETE_MARKER))
    assert second["files"]["a.txt"] != first["files"]["a.txt"]


def test_failed_block_publishes_nothing(gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/failed"
    with pytest.raises(RuntimeError, match="boom"), storage.staged_dir(uri, "test-step") as stage:
        (stage / "half.bin").write_bytes(b"x")
        raise RuntimeError("boom")
    assert storage.list_files(uri) == []
    assert not storage.is_complete(uri)
    # A leftover object (e.g. from a killed upload) is not a complete folder either.
    storage.write_bytes(storage.join(uri, "half.bin"), b"x")
    assert not storage.is_complete(uri)


def test_concurrent_publishers_do_not_mix(gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/race"
    with contextlib.ExitStack() as late:
        stage_b = late.enter_context(storage.staged_dir(uri, "test-step"))
        (stage_b / "a.txt").write_text("from B")
        with storage.staged_dir(uri, "test-step") as stage_a:
            (stage_a / "a.txt").write_text("from A")
        with pytest.raises(storage.ConcurrentWriteError, match=uri):
            late.close()  # B publishes after A did: refused, A's folder is kept whole
    assert storage.read_bytes(storage.join(uri, "a.txt")) == b"from A"
    assert storage.is_complete(uri)


def test_upload_dir_refuses_existing_objects_unless_asked(gcs_bucket: str, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("1")
    uri = f"gs://{gcs_bucket}/up"
    storage.upload_dir(tmp_path, uri)
    storage.upload_dir(tmp_path, uri)  # the same bytes again: nothing is lost, so no error
    (tmp_path / "x.txt").write_text("2")
    with pytest.raises(FileExistsError, match="x.txt"):
        storage.upload_dir(tmp_path, uri)
    storage.upload_dir(tmp_path, uri, overwrite=True)
    assert storage.read_bytes(storage.join(uri, "x.txt")) == b"2"
    target = storage.download_dir(uri, tmp_path / "down")
    assert (target / "x.txt").read_text() == "2"


def test_exists_and_missing_objects(gcs_bucket: str) -> None:
    uri = f"gs://{gcs_bucket}/nothing/here.json"
    assert not storage.exists(uri)
    with pytest.raises(FileNotFoundError, match=uri):
        storage.read_bytes(uri)
    with pytest.raises(FileNotFoundError, match="gs://no-such-bucket-x/"):
        storage.read_bytes("gs://no-such-bucket-x/a")
    storage.write_bytes(uri, b"{}")
    assert storage.exists(uri)


def test_prepare_data_reads_and_writes_gcs(gcs_bucket: str) -> None:
    prepare_data = pytest.importorskip("commerce_lm.steps.prepare_data")
    demo_data = pytest.importorskip("commerce_lm.demo.corpus")
    from commerce_lm.config import parse_config

    data = demo_data.write(f"gs://{gcs_bucket}/input/listings.parquet", n_items=120, seed=3)
    assert storage.exists(data)
    common = {"data": data, "text": ["title", "description"], "split": None}
    cfg = parse_config(
        {
            "model": "unused",
            "domain": {**common, "label": "policy_label"},
            "tasks": [{**common, "name": "counterfeit", "label": "is_counterfeit"}],
            "similarity": [{**common, "name": "relisted", "group": "relist_group"}],
            "prepare": {"max_rejected_fraction": 1.0},
        }
    )
    out = f"gs://{gcs_bucket}/runs/r1/prepared"
    metrics = prepare_data.run(cfg, out)
    assert metrics["accepted_rows"] > 0
    assert storage.is_complete(out)
    files = {f[len(out) + 1 :] for f in storage.list_files(out)}
    assert {"domain.parquet", "labels.json", "corpus.parquet", "stats.json", "metrics.json"} <= files
    assert "tasks/counterfeit.parquet" in files and "similarity/relisted.parquet" in files
    domain = pq.read_table(pa.BufferReader(storage.read_bytes(storage.join(out, "domain.parquet"))))
    assert set(domain.column_names) >= {"id", "text", "lang", "split", "label"}
    assert domain.num_rows == storage.read_json(storage.join(out, "stats.json"))["domain"]["accepted_rows"]
    assert os.environ["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")
