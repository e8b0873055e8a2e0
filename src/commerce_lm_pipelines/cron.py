"""Cron expressions in the 6-field form (seconds first) that KFP's scheduler takes."""

from __future__ import annotations

import re

CRON_FIELDS = ("second", "minute", "hour", "day-of-month", "month", "day-of-week")
_CRON_FIELD = re.compile(r"^[A-Za-z0-9*?/,\-LW#]+$")
_CRON_MACRO = re.compile(r"^@(yearly|annually|monthly|weekly|daily|midnight|hourly|every \S+)$")


def validate_cron(expression: str) -> str:
    """Check a cron expression in the 6-field form KFP's scheduler (robfig/cron) expects.

    Args:
        expression: ``second minute hour day-of-month month day-of-week``, e.g. ``0 0 3 * * *``;
            or a macro such as ``@daily``.

    Returns:
        The expression with normalized spacing.

    Raises:
        ValueError: For a 5-field (crontab) expression, with the 6-field one it probably meant, or
            any other malformed expression.
    """
    text = " ".join(expression.split())
    if _CRON_MACRO.match(text):
        return text
    fields = text.split(" ") if text else []
    if len(fields) == 5:
        raise ValueError(
            f"cron {expression!r} has 5 fields, but KFP takes 6 with seconds first "
            f"({' '.join(CRON_FIELDS)}): did you mean {'0 ' + text!r}?"
        )
    if len(fields) != 6:
        raise ValueError(
            f"cron {expression!r} has {len(fields)} fields; KFP takes 6: {' '.join(CRON_FIELDS)} "
            "(e.g. '0 0 3 * * *' for 03:00 every day)"
        )
    for name, value in zip(CRON_FIELDS, fields, strict=True):
        if not _CRON_FIELD.match(value):
            raise ValueError(f"cron {expression!r}: the {name} field {value!r} is not valid")
    return text
