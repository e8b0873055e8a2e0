"""A bundle's files, and its manifest of checksums.

```
<bundle>/
  encoder/            Hugging Face + sentence-transformers folder (safetensors, tokenizer,
                      modules.json, 1_Pooling/, README.md model card)
  heads/<task>.json   one linear head: scaler, weights, bias, threshold, encoder checksum
  knn/<set>.parquet   reference index of a similarity set: id, group, vector
  metrics.json        the run's metrics
  run_config.json     the run's config (not config.json: that name is the model's)
  manifest.json       what the bundle holds, with a SHA-256 of every other file; written last
```
"""

from __future__ import annotations

from pathlib import Path

from commerce_lm import models
from commerce_lm.modelfiles.checksums import checksums as folder_checksums
from commerce_lm.names import COMPLETE_MARKER

FORMAT = "commerce-lm-bundle/1"
ENCODER_DIR = "encoder"
HEADS_DIR = "heads"
KNN_DIR = "knn"
METRICS_JSON = "metrics.json"
RUN_CONFIG_JSON = "run_config.json"
MANIFEST_JSON = "manifest.json"
MODEL_CARD = "README.md"


class BundleError(ValueError):
    """A bundle that must not be used; the message names the bundle and what is wrong."""


def checksums(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` but the manifest and a completion marker.

    Each file's digest is remembered by its version (:func:`commerce_lm.models.file_sha256`), so
    scoring with a bundle hashes its encoder once, not on every run.
    """
    return folder_checksums(root, {MANIFEST_JSON, COMPLETE_MARKER}, models.file_sha256)


def verify(root: Path, manifest: dict, name: str) -> None:
    """Check that ``root`` holds exactly the manifest's files, each with its checksum.

    Raises:
        BundleError: Naming the bundle and the first files missing, extra or changed.
    """
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{name}: not a {FORMAT} bundle (format {manifest.get('format')!r})")
    expected = manifest.get("files", {})
    found = checksums(root)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    changed = sorted(f for f in set(expected) & set(found) if expected[f] != found[f])
    listed = (("missing", missing), ("unexpected", extra), ("changed", changed))
    problems = [f"{what} {files[:5]}" for what, files in listed if files]
    if problems:
        raise BundleError(f"{name}: files do not match its manifest: " + "; ".join(problems))
