"""Canonical cell values for whole Arrow columns, as :mod:`commerce_lm.data.values` gives them per cell.

Each function computes the common case with ``pyarrow.compute`` and runs the per-cell rule of
:mod:`commerce_lm.data.values` only on the cells a vectorised test cannot vouch for (markup,
entities, non-ASCII text, strings that might spell a number), so the result is the same cell for cell.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from commerce_lm.data import values
from commerce_lm.steps.prepare_data import unicode_classes

# What might spell a Decimal (after Python's strip): a sign, digit or point, inf, nan or snan; or
# anything with a non-ASCII character (Unicode digits and spaces). Only these go through Python.
MAYBE_NUMBER = r"(?i)^[\x09-\x0d\x1c-\x20]*[+-]?(?:[0-9.]|inf|s?nan)|[^\x00-\x7f]"
ASCII = r"^[\x00-\x7f]*$"
# Entities that Arrow replaces as ``html.unescape`` does (the common ones; ``&amp;`` must stay last).
ENTITIES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&nbsp;": "\xa0", "&amp;": "&"}


def _class(test: Callable[[str], bool]) -> str:
    """An RE2 character class of the code points (surrogates aside) for which ``test`` holds."""
    ranges, start = [], None
    for code in [*range(0xD800), *range(0xE000, 0x110000), None]:
        if code is not None and test(chr(code)):
            start = code if start is None else start
            continue
        if start is not None:
            end = code - 1 if code is not None else 0x10FFFF
            ranges.append(f"\\x{{{start:x}}}" + (f"-\\x{{{end:x}}}" if end > start else ""))
            start = None
    return "[" + "".join(ranges) + "]"


def compute_classes() -> dict[str, str]:
    """Python's character classes (its Unicode version), as RE2 patterns for whole columns.

    ``unassigned`` marks code points Python's Unicode database does not assign (a newer utf8proc
    may decompose them): only Python's rules normalise a text with one. Tags (:data:`.values.TAG`,
    the same regex in RE2) are stripped in Arrow; for every other text, NFKC is the same in Arrow
    and in Python (Unicode's normalisation stability), which
    ``tests/commerce_lm/steps/prepare_data/test_prepare_equality.py`` checks code point by code point.
    ``strip`` holds the characters ``str.strip()`` removes, ``other_spaces`` those but the plain space.
    """
    spaces = _class(str.isspace)
    invisible = _class(lambda ch: ch.isspace() or unicodedata.category(ch) == "Cf")
    unassigned = _class(lambda ch: unicodedata.category(ch) == "Cn")
    strip = "".join(ch for ch in map(chr, range(0x110000)) if ch.isspace())  # what str.strip() removes
    return {
        "spaces": spaces + "+",
        "other_spaces": _class(lambda ch: ch.isspace() and ch != " "),
        "blank": f"^{invisible}*$",
        "unassigned": unassigned,
        "strip": strip,
    }


@functools.cache
def classes() -> dict[str, str]:
    """:func:`compute_classes`, stored for this Unicode version (computing them takes seconds)."""
    if unicodedata.unidata_version == unicode_classes.UNIDATA_VERSION:
        return unicode_classes.CLASSES
    return compute_classes()


def is_plain_type(kind: pa.DataType) -> bool:
    """Types whose cells the vectorised rules cover: strings, integers (not booleans) and nulls."""
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_null(kind)
    )


def as_strings(column: pa.Array) -> pa.Array:
    """A plain column as strings: integers as ``str(int)`` does, strings as they are."""
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), pa.string())
    return pc.cast(column, pa.string())


def patch(result: pa.Array, source: pa.Array, mask: pa.Array, rule: Callable[[Any], Any]) -> pa.Array:
    """``result`` with the cells under ``mask`` replaced by ``rule`` applied to ``source``'s cells."""
    mask = pc.fill_null(mask, False)
    where = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    if not len(where):
        return result
    replaced = [rule(value) for value in source.take(pa.array(where)).to_pylist()]
    return pc.replace_with_mask(result, mask, pa.array(replaced, result.type))


def strip(column: pa.Array) -> pa.Array:
    """``str.strip()`` of every string cell."""
    return pc.utf8_trim(column, characters=classes()["strip"])


def missing(column: pa.Array) -> pa.Array:
    """:func:`.values.is_missing` of every cell of a plain column: null or a blank string."""
    if pa.types.is_integer(column.type):
        return column.is_null()
    strings = as_strings(column)
    return pc.or_kleene(strings.is_null(), pc.equal(strip(strings), "")).fill_null(True)


def canonical(column: pa.Array, stripped: bool = False) -> pa.Array:
    """:func:`.values.canonical` of every cell (of its stripped form when ``stripped``); null stays null."""
    if pa.types.is_integer(column.type) or pa.types.is_null(column.type):
        return as_strings(column)
    source = strip(column) if stripped else column
    return patch(source, source, pc.match_substring_regex(source, MAYBE_NUMBER), values.canonical)


def on_rows(column: pa.Array, mask: pa.Array, function: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``column`` with ``function`` (of a column) applied to the cells under ``mask`` only."""
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return column
    return pc.replace_with_mask(column, mask, function(column.filter(mask)))


def _unescape(texts: pa.Array) -> pa.Array:
    # ``&amp;`` goes last, so the ``&`` it leaves never starts another entity: one pass, as Python's.
    for entity, char in ENTITIES.items():
        texts = pc.replace_substring(texts, entity, char)
    return texts


def unescape(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``html.unescape`` of the texts whose every ``&`` starts one of :data:`ENTITIES`, and which have another ``&``."""
    amp = pc.fill_null(pc.match_substring(texts, "&"), False)
    without = texts.filter(amp)
    for entity in ENTITIES:
        without = pc.replace_substring(without, entity, "")
    other = pc.replace_with_mask(pa.array(np.zeros(len(texts), bool)), amp, pc.match_substring(without, "&"))
    return on_rows(texts, amp, _unescape), other


def _collapse(texts: pa.Array) -> pa.Array:
    """Runs of whitespace to one space, then stripped: the regex runs only where a newline will not do."""
    lines = pc.replace_substring(texts, "\n", " ")  # the usual case: a title and a description joined
    needs = pc.match_substring_regex(lines, classes()["other_spaces"] + "|  ")
    collapsed = on_rows(lines, needs, lambda some: pc.replace_substring_regex(some, classes()["spaces"], " "))
    return pc.utf8_trim(collapsed, characters=" ")


def normalize(texts: pa.Array) -> pa.Array:
    """:func:`.values.normalize_text` of every cell: tags, common entities, NFKC and spaces in Arrow.

    Python's rule runs on the texts with another entity, or with a code point its Unicode database
    does not assign.
    """
    unescaped, other_entity = unescape(pc.replace_substring_regex(texts, values.TAG.pattern, " "))
    collapsed = _collapse(pc.utf8_normalize(unescaped, "NFKC"))
    python = pc.or_(other_entity, pc.match_substring_regex(texts, classes()["unassigned"]))
    return patch(collapsed, texts, python, values.normalize_text)


def blank(texts: pa.Array) -> pa.Array:
    """:func:`.values.is_blank` of every normalised text: only spaces and format marks (Python's)."""
    return pc.match_substring_regex(texts, classes()["blank"])


def split_names(column: pa.Array, aliases: dict[str, str]) -> pa.Array:
    """The canonical split a cell names (null for an unknown name) as ``SPLIT_ALIASES`` maps it."""
    strings = as_strings(column)
    lowered = pc.utf8_lower(strip(strings))
    known = pa.array(list(aliases))
    mapped = pc.take(pa.array(list(aliases.values())), pc.index_in(lowered, known))
    other = pc.invert(pc.match_substring_regex(strings, ASCII))
    return patch(mapped, strings, other, lambda value: aliases.get(value.strip().lower()))


def binary_labels(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """:func:`.values.parse_binary_label` of every cell: ``(labels, reasons)``."""
    absent = missing(column)
    if pa.types.is_integer(column.type) or pa.types.is_null(column.type):
        labels = pc.cast(column, pa.int64()) if pa.types.is_integer(column.type) else pa.nulls(len(column), pa.int64())
        known = pc.is_in(labels, pa.array([0, 1], pa.int64()))
        reasons = pc.if_else(absent, "null_label", pc.if_else(known, pa.scalar(None, pa.string()), "unknown_label"))
        return pc.if_else(known, labels, pa.scalar(None, pa.int64())), reasons
    lowered = pc.utf8_lower(strip(column))
    words = {word: 1 for word in values.TRUE_VALUES} | {word: 0 for word in values.FALSE_VALUES}
    labels = pc.take(pa.array(list(words.values()), pa.int64()), pc.index_in(lowered, pa.array(list(words))))
    reasons = pc.if_else(absent, "null_label", pa.scalar(None, pa.string()))
    other = pc.and_(pc.invert(absent), pc.or_(labels.is_null(), pc.invert(pc.match_substring_regex(column, ASCII))))
    labels = patch(labels, column, other, lambda value: values.parse_binary_label(value)[0])
    return labels, patch(reasons, column, other, lambda value: values.parse_binary_label(value)[1])


def class_labels(column: pa.Array, allowed: set[str] | None) -> tuple[pa.Array, pa.Array]:
    """:func:`.values.parse_class_label` of every cell: ``(labels, reasons)``."""
    absent = missing(column)
    labels = pc.if_else(absent, pa.scalar(None, pa.string()), canonical(column, stripped=True))
    reasons = pc.if_else(absent, "null_label", pa.scalar(None, pa.string()))
    if allowed is not None:
        unknown = pc.and_(pc.invert(absent), pc.invert(pc.is_in(labels, pa.array(sorted(allowed), pa.string()))))
        reasons = pc.if_else(unknown, "unknown_label", reasons)
        labels = pc.if_else(unknown, pa.scalar(None, pa.string()), labels)
    return labels, reasons


def groups(column: pa.Array) -> pa.Array:
    """A similarity group of every cell: its canonical value, or null when the cell is missing."""
    return pc.if_else(missing(column), pa.scalar(None, pa.string()), canonical(column))


def group_keys(columns: dict[str, pa.Array], rows: int) -> pa.Array:
    """``column:value`` of the first column (in order) with a present canonical value, per row."""
    keys = pa.nulls(rows, pa.string())
    for name, column in reversed(columns.items()):
        value = canonical(column)
        present = pc.invert(missing(value))
        keys = pc.if_else(present, pc.binary_join_element_wise(f"{name}:", value, ""), keys)
    return keys
