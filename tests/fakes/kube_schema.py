"""Offline validation of custom resources against the CRDs kept in deploy/crds/.

The CRDs are the published files, verbatim. An API server prunes fields its structural schema does
not know; with strict field validation (``kubectl --validate=strict``) it rejects them instead. The
validator here does the same: every object schema that lists its ``properties`` (and does not keep
unknown fields) gets ``additionalProperties: false``, so a misspelt field fails.

The CEL rules (``x-kubernetes-validations``) are not evaluated by jsonschema; the two on a
TrainJob's name are checked by :func:`name_errors`, and :func:`top_level_rules` lets a test notice
when a new CRD version adds more.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.helpers.paths import REPO

CRDS = REPO / "deploy" / "crds"
TRAINJOB_CRD = CRDS / "trainer.kubeflow.org_trainjobs.yaml"
PYTORCHJOB_CRD = CRDS / "kubeflow.org_pytorchjobs.yaml"
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    keeps_unknown = out.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not keeps_unknown:
        out["additionalProperties"] = False
    return out


def openapi_schema(crd_path: Path, version: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of one version of a CRD file."""
    crd = yaml.safe_load(crd_path.read_text())
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    return served["schema"]["openAPIV3Schema"]


def validator(crd_path: Path, version: str) -> jsonschema.Draft7Validator:
    """A strict validator for one version of a CRD (see the module docstring)."""
    schema = _strict(openapi_schema(crd_path, version))
    checker = jsonschema.FormatChecker()
    # OpenAPI integer formats, which jsonschema does not know: range checks.
    checker.checks("int32")(lambda v: not isinstance(v, int) or -(2**31) <= v < 2**31)
    checker.checks("int64")(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**63)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=checker)


def top_level_rules(crd_path: Path, version: str) -> list[str]:
    """The CEL rules on the whole object."""
    return [rule["rule"] for rule in openapi_schema(crd_path, version).get("x-kubernetes-validations", [])]


def name_errors(obj: dict[str, Any]) -> list[str]:
    """The TrainJob CRD's two CEL rules on ``metadata.name``: an RFC 1035 label of at most 63 characters."""
    name = obj.get("metadata", {}).get("name", "")
    errors = []
    if not DNS_1035.match(name):
        errors.append(f"metadata.name {name!r} must match RFC 1035 DNS label format")
    if len(name) > 63:
        errors.append(f"metadata.name {name!r} must be no more than 63 characters")
    return errors


def errors(check: jsonschema.Draft7Validator, obj: dict[str, Any]) -> list[str]:
    """Every schema error of ``obj``, plus the name rules, as readable lines."""
    found = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in check.iter_errors(obj)]
    return sorted(found) + name_errors(obj)
