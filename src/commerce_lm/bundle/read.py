"""Opening a bundle: a folder or ``gs://`` prefix, or a registry whose live pointer names one.

A bundle is checked before use: every file against the manifest's checksum, the encoder against the
checksum the manifest states, and every head against the encoder its vectors came from, so a head is
never applied to vectors of another encoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from commerce_lm import models, storage
from commerce_lm.bundle import layout, registry
from commerce_lm.bundle.layout import BundleError
from commerce_lm.embedding.store import vectors_of
from commerce_lm.embedding.vector_store import StoreKey


@dataclass
class Bundle:
    """An opened, checked bundle.

    Attributes:
        uri: Where it was opened from (after following a registry's live pointer).
        root: A local folder holding it (a cached copy for ``gs://``).
        manifest: Its ``manifest.json``.
    """

    uri: str
    root: Path
    manifest: dict[str, Any]

    @property
    def encoder(self) -> str:
        """The encoder folder (Hugging Face + sentence-transformers)."""
        return str(self.root / layout.ENCODER_DIR)

    @property
    def key(self) -> StoreKey:
        """How the heads' vectors were made: the store key for embedding new listings alike."""
        enc = self.manifest["encoder"]
        # Bundles made before prompts carry none: their vectors were made without one.
        return StoreKey(enc["checksum"], enc["pooling"], int(enc["max_length"]), enc.get("prompt", ""))

    @property
    def tasks(self) -> list[str]:
        """The tasks it has a head for."""
        return list(self.manifest["tasks"])

    @property
    def similarity(self) -> list[str]:
        """The similarity sets it carries a reference index for."""
        return list(self.manifest.get("similarity", {}))

    def head(self, task: str) -> dict[str, Any]:
        """One head: ``scaler_mean``, ``scaler_scale``, ``weight``, ``bias``, ``threshold``, ``encoder_checksum``."""
        return json.loads((self.root / self.manifest["tasks"][task]["path"]).read_text())

    def references(self, name: str) -> tuple[list[str], np.ndarray]:
        """A similarity set's reference ids and their ``float32`` vectors."""
        table = pq.read_table(self.root / self.manifest["similarity"][name]["path"])
        return table.column("id").to_pylist(), vectors_of(table)

    def run_config(self) -> dict[str, Any]:
        """The config of the run that made it."""
        return json.loads((self.root / layout.RUN_CONFIG_JSON).read_text())


def open_bundle(uri: str) -> Bundle:
    """Open and check a bundle.

    Args:
        uri: A bundle folder (local or ``gs://``), or a registry folder, whose live bundle is opened.

    Raises:
        BundleError: When it is not a bundle, a file does not match the manifest, or a head was trained
            on vectors of another encoder than the bundle's (naming both checksums).
    """
    if not storage.exists(storage.join(uri, layout.MANIFEST_JSON)):
        live = registry.live(uri)
        if live is None:
            raise BundleError(f"{uri}: neither a bundle ({layout.MANIFEST_JSON}) nor a registry with a live bundle")
        if not storage.exists(storage.join(live["uri"], layout.MANIFEST_JSON)):
            raise BundleError(
                f"{storage.join(uri, registry.LIVE_JSON)}: its live bundle {live['bundle']} is not at {live['uri']} "
                "(moved or deleted); restore it or publish a bundle again"
            )
        uri = live["uri"]
    root = Path(models.resolve_model(uri))  # gs:// bundles are immutable: downloaded once, then cached
    manifest = json.loads((root / layout.MANIFEST_JSON).read_text())
    layout.verify(root, manifest, uri)
    bundle = Bundle(uri, root, manifest)
    check_encoder(bundle)
    return bundle


def check_encoder(bundle: Bundle) -> None:
    """The encoder is the one the manifest names, and every head was trained on its vectors.

    Raises:
        BundleError: Naming the head (or the encoder folder) and both checksums.
    """
    stated = bundle.manifest["encoder"]["checksum"]
    actual = models.model_checksum(bundle.encoder)
    if actual != stated:
        raise BundleError(f"{bundle.uri}: the encoder folder has checksum {actual}, the manifest says {stated}")
    for task in bundle.tasks:
        trained_on = bundle.head(task).get("encoder_checksum")
        if trained_on != actual:
            raise BundleError(
                f"{bundle.uri}: head {task!r} was trained on vectors of encoder {trained_on}, "
                f"but the bundle's encoder is {actual}; its scores would be meaningless"
            )
