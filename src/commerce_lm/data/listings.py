"""New listings to score: read with prepare-data's readers and rules, every input row accounted for.

Each row is accepted (id, normalised text, language) or rejected with a reason, as prepare-data
does: ``missing_id``, ``undecodable_text``, ``empty_text``, ``text_too_long``, and ``duplicate_id``
(an id seen before with another text) or ``duplicate_row`` (seen before with the same text). So the
input rows always equal the accepted rows plus the rejected rows.

Sharding splits the rows by a hash of their id, so every copy of an id lands in the same shard and
duplicates are still caught; each shard reads the whole input and keeps its own rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from commerce_lm import readers, splits
from commerce_lm.config import DatasetSpec, PrepareConfig
from commerce_lm.data.rows import is_missing, parse_listing, rejected_record


@dataclass
class Listings:
    """One shard of an input, parsed.

    Attributes:
        ids: Accepted listings' ids, in input order.
        texts: Their normalised texts.
        langs: Their languages (``und`` when unknown).
        rejected: Rejected rows: ``file``, ``row``, ``reason`` and the row as it was (``input``).
        input_rows: Rows of this shard in the input.
    """

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    input_rows: int = 0


def shard_of(record: dict[str, Any], path: str, id_column: str, num_shards: int) -> int:
    """The shard a row belongs to: by its id, or (without one) by where it is in the input."""
    raw = record.get(id_column)
    key = f"{path}:{record['_row']}" if is_missing(raw) else str(raw).strip()
    return splits.hash64(key) % num_shards


def _records(location: str, spec: DatasetSpec, batch_rows: int) -> Iterator[tuple[str, dict[str, Any]]]:
    required = list(dict.fromkeys([spec.id, *spec.text]))
    optional = [spec.lang] if spec.lang and spec.lang not in required else []
    for path, frame in readers.iter_batches(location, required, optional, batch_rows):
        for record in frame.to_dict("records"):
            yield path, record


def read_listings(
    location: str, spec: DatasetSpec, prep: PrepareConfig, shard: int = 0, num_shards: int = 1
) -> Listings:
    """Read and check the listings of one shard of ``location``.

    Args:
        location: A Parquet, CSV or JSONL file, folder or glob, local or ``gs://``.
        spec: Which columns hold the id, the text (joined) and the language; ``spec.data`` is unused.
        prep: The text rules (maximum length, cut or reject) of the run whose bundle scores them.
        shard: Which shard to keep, ``0 <= shard < num_shards``.
        num_shards: How many shards the input is cut into.

    Raises:
        readers.InputError: A file that cannot be read as a whole (names the file and column).
    """
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard}: expected 0 <= shard < num_shards={num_shards}")
    out = Listings()
    seen: dict[int, int] = {}  # id digest -> text digest
    for path, record in _records(location, spec, prep.batch_rows):
        if num_shards > 1 and shard_of(record, path, spec.id, num_shards) != shard:
            continue
        out.input_rows += 1
        row_id, text, lang, reason = parse_listing(record, spec.id, spec.text, spec.lang, prep)
        if reason is None:
            id_key, text_key = splits.hash64(row_id), splits.hash64(text)
            if id_key in seen:
                reason = "duplicate_row" if seen[id_key] == text_key else "duplicate_id"
            else:
                seen[id_key] = text_key
        if reason is not None:
            out.rejected.append(rejected_record(record, reason, path))
            continue
        out.ids.append(row_id)
        out.texts.append(text)
        out.langs.append(lang)
    return out
