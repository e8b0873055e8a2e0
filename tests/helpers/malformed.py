"""Odd but valid text and malformed CSV and JSONL records, for the fuzz tests of prepare-data and score."""

import csv
import io

from hypothesis import strategies as st

# Odd but valid text: any script, combining marks, emoji, direction and zero-width marks, markup.
ODD = st.lists(
    st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc")),
        st.sampled_from(["\u200b", "\u202e", "\ufeff", "<b>", "&amp;", "<3", ",", '"', "\t", "\n"]),
    ),
    max_size=12,
).map("".join)
# Bad cells: invalid bytes, wrong types, shifted and ragged rows, broken quotes.
BAD_CSV = st.sampled_from(
    [
        b"{id},red shoes, size 9,1",  # unquoted comma: shifted columns
        b"{id},short row",  # ragged
        b'{id},"text",1,extra',  # ragged
        b'{id},"half"quoted,1',  # broken quote
        b'{id},"never closed,1',  # unclosed quote
        b"{id},bad \xff\xfe bytes,1",
        b"{id}\xff,text with bad id,1",
        b"{id},text with bad label,1\xff",
        b"label-{id},text with a word label,maybe",  # a fine class for the domain, not for a task
        b"label-{id},text with label two,2",
        b"{id},\xe2\x80\x8b,1",  # only a zero-width space
    ]
)
BAD_JSON = st.sampled_from(
    [
        '{"id": "{id}", "text": ',
        "[1, 2, 3]",
        '{"id": "{id}", "text": ["a", "list"], "label": 1}',
        '{"id": "{id}", "text": "label is a list", "label": [1]}',
        '{"id": 1.5, "text": "fractional id", "label": 1}',
        '{"id": true, "text": "boolean id", "label": 0}',
        '{"id": "{id}", "text": "nan label", "label": NaN}',
        '{"id": "{id}", "label": 1}',
        '{"text": "no id", "label": 1}',
        '{"id": "{id}", "text": "bad \\udcff escape", "label": 1}',
    ]
)


def csv_line(row) -> bytes:
    """One CSV record, quoted as needed (a quoted field may hold newlines)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue().encode()
