"""Canonical cell values: one spelling per id, label and group, and normalised text.

A cell reaches these functions as its file typed it (``3``, ``3.0``, ``"3"``, ``Decimal("3.0")``).
Each function returns one canonical string (or 0/1) or a rejection reason; none changes a value it
cannot represent exactly.
"""

from __future__ import annotations

import html
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

# A real tag: ``<name>``, ``</name>``, ``<name/>``, ``<!...>`` (comments, doctype), or ``<name ...>``
# whose attributes include at least one ``key=value``. Text such as ``size <30 for ages >5`` or
# ``a<b and c>d`` is not a tag and keeps its words; a tag of bare attributes alone (``<input
# disabled>``) reads as text too, the price of never cutting words. The pattern is both Python's and
# RE2's (Arrow strips tags with it), so it spells whitespace out and bounds the attribute count
# (Python's engine backtracks over it).
_S = r"[ \t\n\r\f]"
_NAME = r"[A-Za-z][A-Za-z0-9:-]*"
_ATTR = r"[A-Za-z_:@][-A-Za-z0-9_:.@]*"
_VALUE = r"""(?:"[^"<>]*"|'[^'<>]*'|[^ \t\n\r\f"'=<>`]+)"""
_PAIR = f"{_ATTR}{_S}*={_S}*{_VALUE}"
_ANY = f"{_ATTR}(?:{_S}*={_S}*{_VALUE})?"  # a bare attribute or a pair
TAG = re.compile(
    f"<(?:{_NAME}{_S}*/?|{_NAME}(?:{_S}+{_ANY}){{0,30}}{_S}+{_PAIR}(?:{_S}+{_ANY}){{0,30}}{_S}*/?"
    f"|/{_NAME}{_S}*|![^<>]{{0,200}})>"
)
SPACE = re.compile(r"\s+")
# A language tag (BCP 47's shape: ``en``, ``pt-BR``, ``zh_Hant``, ``und``). A ``lang`` cell of another
# shape is a value out of its column (a CSV row whose unquoted comma shifted its fields), not a
# language. Python's and RE2's.
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
TRUE_VALUES = {"1", "true", "yes", "y", "t"}
FALSE_VALUES = {"0", "false", "no", "n", "f"}
# Integers above this cannot come through a float exactly; a float id this large was already rounded.
EXACT_FLOAT_LIMIT = 2**53


def is_missing(value: Any) -> bool:
    """Null, NaN or a blank string: a cell that holds nothing."""
    if value is None:
        return True
    if isinstance(value, float | Decimal):
        return value != value
    return isinstance(value, str) and not value.strip()


def has_undecodable(value: Any) -> bool:
    """Whether a cell holds bytes that were not valid text (kept as lone surrogates)."""
    return isinstance(value, str) and any("\ud800" <= ch <= "\udfff" for ch in value)


def normalize_text(text: str) -> str:
    """Strip real tags, then unescape HTML entities, NFKC-normalise and collapse whitespace.

    Entities are unescaped after the tags are stripped, so an escaped ``&lt;b&gt;`` stays text.
    """
    text = html.unescape(TAG.sub(" ", text))
    return SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def is_blank(text: str) -> bool:
    """True when a text holds only spaces and invisible format marks (zero-width, direction)."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text)


def _number(value: Any) -> Decimal | None:
    """The exact number a cell spells (``3``, ``3.0``, ``"3"``, ``"3.0"``), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def canonical(value: Any) -> str | None:
    """The one spelling of a label or group value: ``3``, ``3.0`` and ``"3"`` are all ``"3"``.

    A string that is not a number is kept as it is (groups such as ``R000123`` never change, so
    their splits never move); a number is written without a trailing ``.0``. Returns None for a
    value that is not a scalar (a list, a mapping).
    """
    if isinstance(value, str) and _number(value) is None:
        return value
    number = _number(value)
    if number is not None:
        if number == number.to_integral_value():
            return str(int(number))
        return format(number.normalize(), "f")
    if isinstance(value, bool):
        return str(value).lower()
    return None


def canonical_id(value: Any) -> tuple[str | None, str | None]:
    """A document id as a canonical string, or a rejection reason (``invalid_id``).

    Strings are stripped; integers (also integral floats within float precision) are written as
    integers, so ``7``, ``7.0`` and ``"7"`` are one document. A fractional or rounded float, a
    boolean or a nested value is not an id.
    """
    if isinstance(value, str):
        return value.strip(), None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None, "invalid_id"
    number = _number(value)
    if number is None or number != number.to_integral_value():
        return None, "invalid_id"
    if isinstance(value, float) and abs(number) >= EXACT_FLOAT_LIMIT:
        return None, "invalid_id"
    return str(int(number)), None


def parse_binary_label(value: Any) -> tuple[int | None, str | None]:
    """A 0/1 label from a cell, or a rejection reason.

    Returns:
        ``(label, None)`` or ``(None, reason)`` with reason ``null_label``, ``unknown_label`` (a
        number other than 0 and 1) or ``invalid_label_type`` (anything that is not a number or a
        boolean word).
    """
    if is_missing(value):
        return None, "null_label"
    if isinstance(value, bool):
        return int(value), None
    if isinstance(value, str) and value.strip().lower() in TRUE_VALUES | FALSE_VALUES:
        return int(value.strip().lower() in TRUE_VALUES), None
    number = _number(value)
    if number is None:
        return None, "invalid_label_type"
    return (int(number), None) if number in (0, 1) else (None, "unknown_label")


def parse_class_label(value: Any, allowed: set[str] | None) -> tuple[str | None, str | None]:
    """A multi-class label as its canonical string, or a rejection reason.

    Reasons: ``null_label``, ``unknown_label`` (not in ``allowed``), ``invalid_label_type``.
    """
    if is_missing(value):
        return None, "null_label"
    label = canonical(value.strip() if isinstance(value, str) else value)
    if label is None:
        return None, "invalid_label_type"
    if allowed is not None and label not in allowed:
        return None, "unknown_label"
    return label, None
