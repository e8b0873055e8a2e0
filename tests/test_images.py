"""images/: what can be checked without a container engine.

Every image a component (or the compiled pipeline) names has a Dockerfile; the versions pinned there
match pyproject.toml and constraints.txt; the images install the package, run its tests in a stage
the runtime depends on, run as non-root with caches off the root filesystem, and bake in no secrets.
"""

import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
dockerfile_parse = pytest.importorskip("dockerfile_parse")
pytest.importorskip("kfp")

import commerce_lm_components  # noqa: E402
from commerce_lm_components import images  # noqa: E402

import commerce_lm  # noqa: E402


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _torch_pin() -> str:
    (pin,) = [d for d in _pyproject()["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    return pin.split("==")[1].strip()


def _parsed(dockerfile: str):  # noqa: ANN202 - a DockerfileParser
    parser = dockerfile_parse.DockerfileParser(fileobj=open(ROOT / dockerfile, "rb"))  # noqa: SIM115
    return parser


def _stages(parser) -> list[list[dict]]:  # noqa: ANN001
    stages: list[list[dict]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _global_args(parser) -> dict[str, str]:  # noqa: ANN001
    """ARG defaults declared before the first FROM (they parametrize every stage)."""
    args = {}
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            break
        if instruction["instruction"] == "ARG" and "=" in instruction["value"]:
            key, value = instruction["value"].split("=", 1)
            args[key.strip()] = value.strip().strip('"')
    return args


def _component_images() -> set[str]:
    found = set()
    for module in pkgutil.iter_modules(commerce_lm_components.__path__):
        loaded = importlib.import_module(f"commerce_lm_components.{module.name}")
        for value in vars(loaded).values():
            spec = getattr(value, "component_spec", None)
            container = getattr(getattr(spec, "implementation", None), "container", None)
            if container is not None:
                found.add(container.image)
    return found


def test_every_image_a_component_names_has_a_dockerfile() -> None:
    named = _component_images()
    assert named, "components declare their base images"
    assert named <= set(images.IMAGES), f"images without a Dockerfile: {named - set(images.IMAGES)}"
    for image, dockerfile in images.IMAGES.items():
        assert (ROOT / dockerfile).is_file(), dockerfile
        assert image.endswith(f":{commerce_lm.__version__}"), "tags come from the package version"


def test_compiled_pipeline_uses_only_our_images(tmp_path: Path) -> None:
    pipeline = pytest.importorskip("commerce_lm_pipelines.pipeline")
    import yaml

    package = pipeline.compile_pipeline(str(tmp_path / "pipeline.yaml"))
    spec = next(yaml.safe_load_all(Path(package).read_text()))
    used = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values() if "container" in e}
    assert used and used <= set(images.IMAGES), used - set(images.IMAGES)


@pytest.mark.parametrize("dockerfile", sorted(set(images.IMAGES.values())))
def test_dockerfile_pins_and_installs(dockerfile: str) -> None:
    parser = _parsed(dockerfile)
    args = _global_args(parser)
    assert args.get("TORCH_VERSION") == _torch_pin(), "torch pin matches pyproject.toml"
    base = next(v for k, v in args.items() if k.endswith("_IMAGE"))
    assert re.search(r":[0-9][\w.\-]*$", base), f"base image {base} has a pinned version tag"
    stages = _stages(parser)
    names = [s[0]["value"].split()[-1] for s in stages]
    assert names == ["deps", "test", "runtime"], names
    text = (ROOT / dockerfile).read_text()
    assert re.search(r'pip install "torch==\$\{TORCH_VERSION\}" --index-url', text)
    installs = [i["value"] for i in parser.structure if i["instruction"] == "RUN" and "pip install" in i["value"]]
    for command in installs:
        for part in re.split(r"&&", command):
            if "pip install" in part and "torch==" not in part:
                assert "-c" in part.split() and "constraints.txt" in part, f"unconstrained install: {part}"
    assert any(re.search(r"pip install .*--no-deps /src\b", c) for c in installs), "runtime installs the package"
    assert any('".[pipelines]"' in c for c in installs), "kfp is in the image (install_kfp_package=False)"
    python = re.search(r"python:?(3\.\d+)", base) or re.search(r"python(3\.\d+)", text)
    requires = _pyproject()["project"]["requires-python"]
    minor = int(python.group(1).split(".")[1])
    low, high = (int(x) for x in re.findall(r"3\.(\d+)", requires))
    assert low <= minor < high, f"image Python 3.{minor} outside {requires}"


@pytest.mark.parametrize("dockerfile", sorted(set(images.IMAGES.values())))
def test_runtime_stage_is_non_root_read_only_friendly_and_tested(dockerfile: str) -> None:
    runtime = _stages(_parsed(dockerfile))[-1]
    users = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "runs as a non-root user"
    env = " ".join(i["value"] for i in runtime if i["instruction"] == "ENV")
    assert re.search(r"\bHOME=/tmp\b", env) and "XDG_CACHE_HOME=/tmp" in env and "HF_HOME=/tmp" in env
    copies = [i["value"] for i in runtime if i["instruction"] == "COPY"]
    assert any("--from=test" in c for c in copies), "the runtime depends on the test stage, so tests run"
    text = (ROOT / dockerfile).read_text()
    assert not re.search(r"(?i)^\s*(ENV|ARG)\s+\S*(SECRET|PASSWORD|TOKEN|CREDENTIALS|API_KEY)", text, re.M)
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in text and ".json " not in text


def test_dockerignore_keeps_the_context_small() -> None:
    for dockerfile in set(images.IMAGES.values()):
        ignore = (ROOT / f"{dockerfile}.dockerignore").read_text().split()
        assert ".venv" in ignore and ".git" in ignore


@pytest.mark.parametrize("dockerfile", sorted(set(images.IMAGES.values())))
def test_dependency_skeleton_holds_every_package(dockerfile: str) -> None:
    # pip refuses a package list naming a missing folder, so the deps stage's skeleton must list them all.
    deps = _stages(_parsed(dockerfile))[0]
    skeleton = next(i["value"] for i in deps if i["instruction"] == "RUN" and "for package in" in i["value"])
    listed = set(re.search(r"for package in ([^;]+);", skeleton).group(1).split())
    packages = _pyproject()["tool"]["setuptools"]["packages"]
    wanted = {p.removeprefix("commerce_lm.").replace(".", "/") for p in packages if p.startswith("commerce_lm.")}
    assert listed == wanted, f"skeleton {sorted(listed)} != pyproject packages {sorted(wanted)}"
