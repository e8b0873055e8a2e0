"""images/: what can be checked without a container engine.

Every image a component (or the compiled pipeline) names has a Dockerfile; the versions pinned there
match pyproject.toml and constraints.txt; the images install the package, run its tests in a stage
the runtime depends on, run as non-root with caches off the root filesystem, and bake in no secrets.
"""

import importlib
import importlib.util
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

dockerfile_parse = pytest.importorskip("dockerfile_parse")
pytest.importorskip("kfp")

import commerce_lm  # noqa: E402
import commerce_lm_components  # noqa: E402
from commerce_lm_components import images  # noqa: E402


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _torch_pin() -> str:
    (pin,) = [d for d in _pyproject()["project"]["dependencies"] if re.match(r"torch\s*==", d)]
    return pin.split("==")[1].strip()


def _parsed(dockerfile: str):  # noqa: ANN202 - a DockerfileParser
    parser = dockerfile_parse.DockerfileParser(fileobj=open(REPO / dockerfile, "rb"))  # noqa: SIM115
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
        assert (REPO / dockerfile).is_file(), dockerfile
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
    text = (REPO / dockerfile).read_text()
    assert re.search(r'pip install "torch==\$\{TORCH_VERSION\}" --index-url', text)
    installs = [i["value"] for i in parser.structure if i["instruction"] == "RUN" and "pip install" in i["value"]]
    for command in installs:
        for part in re.split(r"&&", command):
            if "pip install" in part and "torch==" not in part:
                assert "-c" in part.split() and "constraints.txt" in part, f"unconstrained install: {part}"
    assert any(re.search(r"pip install .*--no-deps /src\b", c) for c in installs), "runtime installs the package"
    assert any('".[pipelines]"' in c for c in installs), "kfp is in the image (install_kfp_package=False)"
    python = args.get("PYTHON_VERSION") or re.search(r"python:?(3\.\d+)", base).group(1)
    requires = _pyproject()["project"]["requires-python"]
    minor = int(python.split(".")[1])
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
    text = (REPO / dockerfile).read_text()
    assert not re.search(r"(?i)^\s*(ENV|ARG)\s+\S*(SECRET|PASSWORD|TOKEN|CREDENTIALS|API_KEY)", text, re.M)
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in text and ".json " not in text


def test_dockerignore_keeps_the_context_small() -> None:
    for dockerfile in set(images.IMAGES.values()):
        ignore = (REPO / f"{dockerfile}.dockerignore").read_text().split()
        assert ".venv" in ignore and ".git" in ignore


def _pip_installs(dockerfile: str) -> list[list[str]]:
    """The arguments of every ``pip install`` in the Dockerfile."""
    runs = [i["value"] for i in _parsed(dockerfile).structure if i["instruction"] == "RUN"]
    parts = [part.split() for run in runs for part in re.split(r"&&|;", run)]
    return [words[words.index("install") + 1 :] for words in parts if words[:2] == ["pip", "install"]]


@pytest.mark.parametrize("dockerfile", sorted(set(images.IMAGES.values())))
def test_dockerfile_installs_only_what_pyproject_names(dockerfile: str) -> None:
    # The dependencies come from pyproject.toml itself (a new one there is in the next build); a package
    # a Dockerfile names apart from the project would fall out of step with it.
    extras = set(_pyproject()["project"]["optional-dependencies"])
    valued = {"-c", "--index-url"}
    for words in _pip_installs(dockerfile):
        targets = [w for i, w in enumerate(words) if not w.startswith("-") and (i == 0 or words[i - 1] not in valued)]
        for target in targets:
            target = target.strip('"')
            if target == "torch==${TORCH_VERSION}":
                continue  # checked against pyproject's pin above
            match = re.fullmatch(r"(\.|/src)(?:\[(\w+)\])?", target)
            assert match, f"{dockerfile} installs {target}, not from pyproject.toml"
            assert match.group(2) in extras | {None}, f"{dockerfile}: no extra {match.group(2)} in pyproject.toml"


def _skeleton():  # noqa: ANN202 - images/skeleton.py, which the images run before copying our code
    spec = importlib.util.spec_from_file_location("skeleton", REPO / "images" / "skeleton.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pyproject_lists_every_package_the_images_need() -> None:
    # The images install what pyproject.toml lists; a package folder it misses would be absent from them.
    listed = set(_skeleton().package_dirs(_pyproject()))
    found = {init.parent.relative_to(REPO) for init in (REPO / "src").rglob("__init__.py")}
    assert listed == found, f"pyproject.toml packages {sorted(map(str, listed ^ found))} out of step with the tree"


def test_skeleton_lets_pip_resolve_from_pyproject_alone(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "src/commerce_lm/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((REPO / name).read_text())
    _skeleton().main(tmp_path)
    for folder in _skeleton().package_dirs(_pyproject()):
        assert (tmp_path / folder / "__init__.py").is_file(), folder
    assert (tmp_path / _pyproject()["project"]["readme"]).is_file()
    assert (tmp_path / "src/commerce_lm/__init__.py").read_text() == (REPO / "src/commerce_lm/__init__.py").read_text()


@pytest.mark.parametrize("dockerfile", sorted(set(images.IMAGES.values())))
def test_dependencies_install_before_our_code(dockerfile: str) -> None:
    # A code change must rebuild only the last layers: the deps stage copies pyproject.toml and what pip
    # needs to read it, never the code or the README.
    deps, test, _ = _stages(_parsed(dockerfile))
    copied = {path for i in deps if i["instruction"] == "COPY" for path in i["value"].split()[:-1]}
    assert copied == {"pyproject.toml", "constraints.txt", "images/skeleton.py", "src/commerce_lm/__init__.py"}
    assert any(i["instruction"] == "RUN" and i["value"].startswith("python skeleton.py") for i in deps)
    kinds = [i["instruction"] for i in test]
    assert kinds.index("COPY") > kinds.index("RUN"), "the test tools install before the code is copied"
