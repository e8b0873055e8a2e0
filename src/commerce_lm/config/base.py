"""The base of every settings model: strict keys, and canonical JSON for what travels between steps."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A settings model that refuses unknown keys, so a typo never falls back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class Canonical(Strict):
    """A config (or a step's part of one) that travels as canonical JSON, known by a hash of it."""

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): what is passed between steps and to components."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def fingerprint(self) -> str:
        """A short, stable hash of :meth:`to_json`; changes whenever any setting in it changes."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


# Columns a file may lack while the config leaves them at their default names.
