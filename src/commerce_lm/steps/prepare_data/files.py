"""Each input file read once for every dataset that names it, and its normalised text shared.

A file stays in memory only until the last dataset that names it is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from commerce_lm.config import PrepareSection
from commerce_lm.data import readers
from commerce_lm.data.parse import Dataset
from commerce_lm.data.readers import LoadedFile
from commerce_lm.steps.prepare_data import frame as frames
from commerce_lm.steps.prepare_data.keys import TextCodes


class Files:
    """The read files of a run, and the frames of its datasets."""

    def __init__(self, cfg: PrepareSection, datasets: list[Dataset]) -> None:
        """Plan the reads: the columns of every dataset that names a location are read together."""
        self.cfg = cfg
        self.columns: dict[str, list[str]] = {}
        for ds in datasets:
            named, optional = ds.columns()
            known = self.columns.setdefault(ds.spec.data, [])
            known.extend(c for c in named + optional if c not in known)
        self.users = Counter(ds.spec.data for ds in datasets)  # datasets still to write, per location
        self.cache: dict[str, LoadedFile] = {}
        self.texts: dict[tuple[str, tuple[str, ...]], tuple] = {}  # text, reason, TextCodes
        self.paths: dict[str, list[str]] = {}

    def loaded(self, path: str) -> LoadedFile:
        """A file read earlier in the run."""
        return self.cache[path]

    def _load(self, ds: Dataset, path: str) -> LoadedFile:
        named, optional = ds.columns()
        loaded = self.cache.get(path)
        if loaded is None or any(c not in loaded.read for c in named + optional):
            wanted = list(dict.fromkeys([*self.columns[ds.spec.data], *named, *optional]))
            loaded = readers.load_file(path, wanted, ds.spec.encoding, self.cfg.prepare.batch_rows)
            self.cache[path] = loaded
            self.texts = {key: value for key, value in self.texts.items() if key[0] != path}
        loaded.check_columns(named)
        return loaded

    def _text(self, ds: Dataset, loaded: LoadedFile) -> Callable[[], tuple[pa.Array, pa.Array]]:
        def shared() -> tuple[pa.Array, pa.Array]:
            key = (loaded.path, tuple(ds.spec.text))
            if key not in self.texts:
                text, reasons = frames.texts(ds, loaded, self.cfg.prepare)
                self.texts[key] = (text, reasons, TextCodes(text))
            return self.texts[key][:2]

        return shared

    def frame(self, ds: Dataset) -> tuple[pa.Table, TextCodes]:
        """The parsed frame of ``ds`` over all its files (with ``file`` and ``row``), and its texts' codes.

        A dataset of one plain file shares the codes (and split keys) of that file's text.
        """
        parts, shared = [], None
        self.paths[ds.spec.data] = readers.expand(ds.spec.data)
        for path in self.paths[ds.spec.data]:
            loaded = self._load(ds, path)
            parsed = frames.parse_file(ds, loaded, self.cfg.prepare, self._text(ds, loaded))
            shared = self.texts.get((path, tuple(ds.spec.text))) if frames.plain(ds, loaded) else None
            where = pa.DictionaryArray.from_arrays(pa.array(np.zeros(loaded.rows, np.int32)), pa.array([path]))
            parsed = parsed.append_column("file", where)  # the path once, not once per row
            parts.append(parsed.append_column("row", pa.array(range(loaded.rows), pa.int64())))
        frame = pa.concat_tables(parts)
        if len(parts) == 1 and shared is not None:
            return frame, shared[2]
        return frame, TextCodes(frame["text"].combine_chunks())

    def done(self, ds: Dataset) -> None:
        """``ds`` is written: forget the files no later dataset names."""
        self.users[ds.spec.data] -= 1
        if self.users[ds.spec.data] == 0:
            for path in self.paths.get(ds.spec.data, []):
                still = any(n and path in self.paths.get(loc, [path]) for loc, n in self.users.items())
                if not still:
                    self.cache.pop(path, None)
                    self.texts = {key: value for key, value in self.texts.items() if key[0] != path}
