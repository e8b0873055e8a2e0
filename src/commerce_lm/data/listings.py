"""New listings to score: read with prepare-data's readers and parser, every input row accounted for.

Each row is accepted (id, normalised text, language) or rejected with a reason and column, as
prepare-data does (:func:`commerce_lm.data.parse.parse`: ``malformed_row``, ``missing_id``,
``invalid_id``, ``undecodable_text``, ``empty_text``, ``text_too_long``, ...), plus ``duplicate_id``
(an id seen before with another text) or ``duplicate_row`` (seen before with the same text). A
repeated text under another id is kept: a re-listing is what scoring looks for. So the input rows
always equal the accepted rows plus the rejected rows.

Sharding splits the rows by a hash of their id, so every copy of an id lands in the same shard and
duplicates are still caught; each shard reads the whole input and keeps its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commerce_lm.config import DatasetSpec, PrepareConfig
from commerce_lm.data import readers, splits, values
from commerce_lm.data.parse import Dataset, parse
from commerce_lm.data.rejected import rejected_record


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
    missing = "_malformed" in record or values.is_missing(raw) or not isinstance(raw, str | int | float)
    key = f"{path}:{record['_row']}" if missing else str(raw).strip()
    return splits.hash64(key) % num_shards


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
    # Listings to score carry no split or label: only id, text and language are read and checked.
    dataset = Dataset("listings", "listings", spec.model_copy(update={"split": None, "group_by": []}))
    named, optional = dataset.columns()
    seen: dict[int, int] = {}  # id digest -> text digest
    for path, record in readers.iter_records(location, named, optional, prep.batch_rows, spec.encoding):
        if num_shards > 1 and shard_of(record, path, spec.id, num_shards) != shard:
            continue
        out.input_rows += 1
        row = parse(dataset, record, prep)
        if row.reason is None:
            id_key, text_key = splits.hash64(row.id), splits.hash64(row.text)
            if id_key in seen:
                row.reject("duplicate_row" if seen[id_key] == text_key else "duplicate_id", spec.id)
            else:
                seen[id_key] = text_key
        if row.reason is not None:
            out.rejected.append(rejected_record(record, row, path))
            continue
        out.ids.append(row.id)
        out.texts.append(row.text)
        out.langs.append(row.lang)
    return out
