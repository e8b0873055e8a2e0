"""The encoder checksum (the vector store's key) covers everything that changes a vector."""

import os
from pathlib import Path

import pytest
from huggingface_hub import constants

from commerce_lm import models
from commerce_lm.modelfiles import checksums
from commerce_lm.models import ModelError

FILES = {
    "model.safetensors": b"weights",
    "config.json": b'{"model_type": "xlm-roberta"}',
    "tokenizer.json": b'{"model": {"vocab": [["a", 0.0]]}}',
    "tokenizer_config.json": b'{"do_lower_case": false}',
    "special_tokens_map.json": b'{"cls_token": "<s>"}',
    "sentencepiece.bpe.model": b"spm",
    "modules.json": b'[{"path": "1_Pooling"}]',
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    "config_sentence_transformers.json": b'{"prompts": {"query": "query: "}}',
}


def _model(root: Path) -> Path:
    for name, content in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    (root / "README.md").write_text("a model card")
    return root


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_file_that_changes_a_vector_changes_the_checksum(tmp_path, name):
    model = _model(tmp_path)
    before = models.model_checksum(str(model))
    (model / name).write_bytes(FILES[name] + b" ")
    assert models.model_checksum(str(model)) != before


def test_a_second_checksum_of_unchanged_files_reads_none_of_them(tmp_path, monkeypatch):
    model = _model(tmp_path)
    before = models.model_checksum(str(model))

    def read(path):
        raise AssertionError(f"read {path} again")

    monkeypatch.setattr(checksums, "file_sha256", read)
    assert models.model_checksum(str(model)) == before


def test_a_same_size_rewrite_with_its_old_modification_time_still_changes_the_checksum(tmp_path):
    """The remembered file digests are known by the change time too, which no tool can set back."""
    model = _model(tmp_path)
    weights = model / "model.safetensors"
    before, stat = models.model_checksum(str(model)), weights.stat()
    weights.write_bytes(b"WEIGHTS")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_size == stat.st_size and weights.stat().st_mtime_ns == stat.st_mtime_ns
    assert models.model_checksum(str(model)) != before


def test_the_model_card_does_not_change_the_checksum(tmp_path):
    model = _model(tmp_path)
    before = models.model_checksum(str(model))
    (model / "README.md").write_text("another card")
    assert models.model_checksum(str(model)) == before


def test_a_folder_whose_weights_were_deleted_is_refused(tmp_path):
    model = _model(tmp_path)
    (model / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=rf"{tmp_path}: no \*\.safetensors weights"):
        models.model_checksum(str(model))


def _cached_snapshot(cache: Path, repo: str, commit: str) -> None:
    """A hub model in a local Hugging Face cache, ``main`` resolved to ``commit``."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "snapshots" / commit / "config.json").write_text("{}")
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)


def test_a_hub_id_is_keyed_by_the_commit_it_resolves_to(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    _cached_snapshot(tmp_path, "org/encoder", "a" * 40)
    first = models.model_checksum("org/encoder")
    _cached_snapshot(tmp_path, "org/encoder", "b" * 40)  # an upstream update, downloaded
    assert models.model_checksum("org/encoder") != first
    with pytest.raises(ModelError, match="org/unknown: neither a model folder nor a model on the Hugging Face hub"):
        models.model_checksum("org/unknown")
    with pytest.raises(ModelError, match="neither a model folder"):
        models.model_checksum(str(tmp_path / "no such folder"))
