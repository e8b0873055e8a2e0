"""The sentence-transformers files of a model folder: how it pools and which prompts it declares.

``SentenceTransformer(folder)`` reads them, and so does this project (:func:`declared_pooling`,
:func:`prompt`), so the library, ``AutoModel`` plus pooling, and sentence-transformers agree on a
model's vectors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

POOLINGS = ("cls", "mean")
MODULES_JSON = "modules.json"
POOLING_MODULE = "sentence_transformers.models.Pooling"
ST_CONFIG_JSON = "config_sentence_transformers.json"
# ``embed.prompt`` / ``finetune.prompt``: the declared default, no prompt, or a declared prompt's name.
PROMPT_AUTO, PROMPT_NONE = "auto", "none"
_MODE_KEYS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens"}


def declared_pooling(folder: str) -> str:
    """How the model in ``folder`` says it pools: its sentence-transformers pooling config, else ``cls``.

    ``cls`` is the reference's choice for a model that declares nothing (a plain Hugging Face encoder).

    Raises:
        ValueError: The folder declares a pooling mode this project does not implement (max, weighted...).
    """
    modules_file = Path(folder, MODULES_JSON)
    if not modules_file.is_file():
        return "cls"
    modules = json.loads(modules_file.read_text())
    pooling = next((m for m in modules if m.get("type") == POOLING_MODULE), None)
    if pooling is None:
        return "cls"
    config = json.loads(Path(folder, pooling["path"], "config.json").read_text())
    chosen = [mode for mode, key in _MODE_KEYS.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in _MODE_KEYS.values()]
    if len(chosen) != 1 or others:
        raise ValueError(f"{folder}: pooling config {config} is not one of {POOLINGS}")
    return chosen[0]


def declared_prompts(folder: str) -> tuple[dict[str, str], str | None]:
    """The prompts ``folder`` declares and the name of its default one (``({}, None)`` when none).

    Raises:
        ValueError: The default prompt name is not among the prompts; names the file.
    """
    config_file = Path(folder, ST_CONFIG_JSON)
    if not config_file.is_file():
        return {}, None
    config = json.loads(config_file.read_text())
    prompts, default = dict(config.get("prompts") or {}), config.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise ValueError(f"{config_file}: default_prompt_name {default!r} is not one of the prompts {sorted(prompts)}")
    return prompts, default


def prompt_name(folder: str, setting: str) -> str | None:
    """Which declared prompt ``setting`` picks for the model in ``folder``; ``None`` for no prompt.

    Args:
        folder: The model folder (a hub id or anything not a folder declares nothing).
        setting: ``auto`` (the declared default prompt, if any), ``none`` (no prompt), or the name of
            a prompt the folder declares (``query``).

    Raises:
        ValueError: ``setting`` names a prompt the folder does not declare.
    """
    if setting == PROMPT_NONE:
        return None
    prompts, default = declared_prompts(folder)
    if setting == PROMPT_AUTO:
        return default
    if setting not in prompts:
        raise ValueError(f"{folder}: declares no prompt {setting!r} (it declares {sorted(prompts) or 'none'})")
    return setting


def prompt(folder: str, setting: str) -> str:
    """The text to put before every input of the model in ``folder``, as sentence-transformers would.

    Args:
        folder: The model folder.
        setting: As for :func:`prompt_name`.

    Returns:
        The prompt, ``""`` for none.
    """
    name = prompt_name(folder, setting)
    return "" if name is None else declared_prompts(folder)[0][name]


def write_sentence_transformers_files(
    folder: str,
    pooling: str,
    dim: int,
    max_length: int,
    prompts: Mapping[str, str] | None = None,
    default_prompt_name: str | None = None,
) -> None:
    """Declare ``pooling`` (and any prompts) in ``folder`` the way sentence-transformers reads them.

    ``SentenceTransformer(folder).encode(texts)`` then gives this project's own vectors (no
    normalisation module: heads get the raw pooled vectors, and KNN normalises them itself).

    Args:
        folder: The model folder.
        pooling: ``cls`` or ``mean``.
        dim: The vectors' width.
        max_length: Tokens per input.
        prompts: Prompt name -> text put before inputs (e5's ``query: `` / ``passage: ``).
        default_prompt_name: The prompt used when the caller names none.

    Raises:
        ValueError: An unknown pooling, or a default prompt that is not among ``prompts``.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r}: expected one of {POOLINGS}")
    prompts = dict(prompts or {})
    if default_prompt_name is not None and default_prompt_name not in prompts:
        raise ValueError(f"default prompt {default_prompt_name!r} is not one of the prompts {sorted(prompts)}")
    root = Path(folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": POOLING_MODULE},
    ]
    (root / MODULES_JSON).write_text(json.dumps(modules, indent=2))
    (root / "1_Pooling").mkdir(exist_ok=True)
    config = {"word_embedding_dimension": dim, **{key: mode == pooling for mode, key in _MODE_KEYS.items()}}
    config.update({"pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False})
    (root / "1_Pooling" / "config.json").write_text(json.dumps(config, indent=2))
    (root / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_length, "do_lower_case": False}))
    if prompts:
        st_config = {"prompts": prompts, "default_prompt_name": default_prompt_name, "similarity_fn_name": "cosine"}
        (root / ST_CONFIG_JSON).write_text(json.dumps(st_config, indent=2))
