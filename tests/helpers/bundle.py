"""Publishing a bundle from a finished run's outputs (the tiny config), as the publish-bundle step does."""

from pathlib import Path

from commerce_lm.config import section_for
from commerce_lm.steps import publish_bundle


def publish(cfg, prepared, outputs: Path, out: Path, heads: Path | None = None) -> dict:
    """Publish ``outputs`` (a run's finetune, emb, heads and knn folders) to ``cfg``'s registry."""
    return publish_bundle.run(
        section_for("publish-bundle", cfg), str(prepared), str(outputs / "finetune"), str(outputs / "emb"),
        str(heads or outputs / "heads"), str(outputs / "knn"), str(out),
    )  # fmt: skip
