"""Turning an encoder's last hidden states into one vector per document."""

from __future__ import annotations

POOLINGS = ("cls", "mean")


def pool(hidden, attention_mask, pooling: str):  # noqa: ANN001, ANN201 - torch tensors
    """Pool ``[batch, length, dim]`` hidden states into ``[batch, dim]``.

    Args:
        hidden: The encoder's last hidden states.
        attention_mask: ``[batch, length]``, 1 for real tokens and 0 for padding.
        pooling: ``cls`` (the first token, the method's choice) or ``mean`` (over real tokens only).

    Returns:
        The pooled vectors, in ``hidden``'s dtype.

    Raises:
        ValueError: On an unknown pooling name.
    """
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        # Padding must not dilute the mean: weight by the mask and divide by the real length.
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    raise ValueError(f"pooling {pooling!r}: expected one of {POOLINGS}")


# sentence-transformers' files that declare how a model folder pools (its ``Pooling`` module).
MODULES_JSON = "modules.json"
POOLING_MODULE = "sentence_transformers.models.Pooling"
_MODE_KEYS = {"cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens"}


def declared_pooling(folder: str) -> str:
    """How the model in ``folder`` says it pools: its sentence-transformers pooling config, else ``cls``.

    ``cls`` is the reference's choice for a model that declares nothing (a plain Hugging Face encoder).

    Raises:
        ValueError: The folder declares a pooling mode this project does not implement (max, weighted...).
    """
    import json
    from pathlib import Path

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


def write_sentence_transformers_files(folder: str, pooling: str, dim: int, max_length: int) -> None:
    """Declare ``pooling`` in ``folder`` the way sentence-transformers reads it.

    ``SentenceTransformer(folder).encode(texts)`` then gives this project's own vectors (no
    normalisation module: heads get the raw pooled vectors, and KNN normalises them itself).
    """
    import json
    from pathlib import Path

    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r}: expected one of {POOLINGS}")
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
