"""What prepare-data and scoring do alike to one input row: normalise its text, and keep it when rejected.

A rejected row is kept as it was (JSON), with the file, its row number there and the reason, so a
user can see what was left out and why; nothing is dropped silently.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from typing import Any

import pyarrow as pa

from commerce_lm.config import PrepareConfig

TAG = re.compile(r"<[^>]{0,200}>")
SPACE = re.compile(r"\s+")
REJECTED_SCHEMA = pa.schema(
    [("file", pa.string()), ("row", pa.int64()), ("reason", pa.string()), ("input", pa.string())]
)


def normalize_text(text: str) -> str:
    """Unescape HTML entities, drop tag remnants, NFKC-normalise and collapse whitespace."""
    text = TAG.sub(" ", html.unescape(text))
    return SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def has_undecodable(text: str) -> bool:
    """Whether a text holds bytes that were not valid UTF-8 (kept by the readers as lone surrogates)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def is_missing(value: Any) -> bool:
    """Null or NaN: a cell that holds nothing."""
    return value is None or (isinstance(value, float) and value != value)


def parse_listing(
    record: dict[str, Any], id_column: str, text_columns: list[str], lang_column: str | None, prep: PrepareConfig
) -> tuple[str, str, str, str | None]:
    """A listing's id, normalised text and language, or the reason it is rejected.

    Text columns are joined with a newline (empty cells skipped); a text longer than
    ``prep.max_text_chars`` is cut or rejected as ``prep.overlong`` says.

    Returns:
        ``(id, text, lang, reason)``; ``reason`` is None for a good row, else ``missing_id``,
        ``undecodable_text``, ``empty_text`` or ``text_too_long``.
    """
    raw_id = record.get(id_column)
    row_id = "" if is_missing(raw_id) else str(raw_id).strip()
    raw_text = "\n".join(str(record[c]) for c in text_columns if not is_missing(record.get(c)))
    lang = str(record.get(lang_column) or "und") if lang_column else "und"
    if not row_id:
        return row_id, "", lang, "missing_id"
    if has_undecodable(raw_text):
        return row_id, "", lang, "undecodable_text"
    text = normalize_text(raw_text)
    if not text:
        return row_id, text, lang, "empty_text"
    if len(text) > prep.max_text_chars:
        if prep.overlong == "reject":
            return row_id, text, lang, "text_too_long"
        text = text[: prep.max_text_chars]
    return row_id, text, lang, None


def _printable(value: Any) -> Any:
    if is_missing(value):
        return None
    if isinstance(value, str):  # undecodable bytes survive as visible escapes
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value if isinstance(value, int | float | bool) else str(value)


def rejected_record(record: dict[str, Any], reason: str, path: str) -> dict[str, Any]:
    """The input row as it was (JSON), where it came from (``_row`` is its number in ``path``), and why."""
    kept = {k: _printable(v) for k, v in record.items() if k != "_row"}
    return {
        "file": path,
        "row": int(record["_row"]),
        "reason": reason,
        "input": json.dumps(kept, ensure_ascii=False, default=str),
    }
