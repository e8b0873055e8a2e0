"""Per-step code versions: a hash of the source of every library module a step imports.

A step's cache key holds its code version, so a change to a module invalidates exactly the steps
that import it (directly or through other library modules) and no others. Unlike a git commit it
is the same in a checkout, a wheel and an image built from the same sources. Imports are found by
reading each module's source (``import`` and ``from ... import`` anywhere in the file, lazy ones
inside functions included), so no step module is executed. A package's data files (templates,
for example) count with the package: they are code too. A package that loads its own modules by
name (``importlib.import_module(f"{__name__}.{name}")``, as the fine-tune's objectives do) counts
with every module in its folder, since any of them may be the one loaded.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path

from commerce_lm import config


def _source(module: str) -> Path | None:
    """The source file of ``module``, found without importing anything, or ``None`` if there is none."""
    root, *parts = module.split(".")
    spec = importlib.util.find_spec(root)  # the top package only: importing it runs no step code
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations)), *parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _loads_own_modules_by_name(node: ast.AST) -> bool:
    """Whether ``node`` is ``importlib.import_module(f"{__name__}...")``: a package loading one of its modules."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.JoinedStr)):
        return False
    function, first = node.func, node.args[0].values[:1]
    called = isinstance(function, ast.Attribute) and function.attr == "import_module"
    named = bool(first) and isinstance(first[0], ast.FormattedValue) and getattr(first[0].value, "id", "") == "__name__"
    return called and named


def _own_modules(init: Path, package: str) -> set[str]:
    """Every module in the folder of the package ``package`` whose ``__init__.py`` is ``init``, subpackages' too."""
    return {
        ".".join((package, *path.relative_to(init.parent).with_suffix("").parts)).removesuffix(".__init__")
        for path in init.parent.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def _imported(path: Path, root: str, module: str) -> set[str]:
    """Modules below package ``root`` that the file at ``path`` (module ``module``) imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if path.name == "__init__.py" and _loads_own_modules_by_name(node):
            found.update(_own_modules(path, module))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            # `from pkg import name` imports the submodule pkg.name when there is one.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == root or name.startswith(f"{root}.")}


def module_closure(module: str, root: str = "commerce_lm") -> dict[str, Path]:
    """Every module of package ``root`` that ``module`` imports, directly or not, with its file.

    Args:
        module: A dotted module name, e.g. ``commerce_lm.steps.finetune_encoder``.
        root: The package whose modules count.

    Returns:
        Module name -> source file, ``module`` itself included.

    Raises:
        ModuleNotFoundError: When ``module`` has no source file.
    """
    start = _source(module)
    if start is None:
        raise ModuleNotFoundError(f"{module}: no Python source to version")
    closure, pending = {module: start}, [module]
    while pending:
        current = pending.pop()
        # Importing a module runs its parent packages first: they count too.
        parents = {".".join(current.split(".")[:i]) for i in range(1, current.count(".") + 1)}
        for name in _imported(closure[current], root, current) | parents:
            path = _source(name)
            if path is not None and name not in closure:
                closure[name] = path
                pending.append(name)
    return closure


def package_data(init: Path) -> list[Path]:
    """The data files of the package whose ``__init__.py`` is ``init``, its subpackages' left out.

    Those are the files beside its modules that are not Python, and every file in its folders that
    are not packages themselves (a ``templates/`` folder, say), in a stable order.
    """
    found, pending = [], [init.parent]
    while pending:
        folder = pending.pop()
        for path in sorted(folder.iterdir()):
            if path.is_dir() and path.name != "__pycache__" and not (path / "__init__.py").is_file():
                pending.append(path)
            elif path.is_file() and path.suffix not in (".py", ".pyc") and not path.name.startswith("."):
                found.append(path)
    return sorted(found)


def code_version(module: str, root: str = "commerce_lm") -> str:
    """A short hash of the sources of ``module`` and every ``root`` module it imports, with their data."""
    digest = hashlib.sha256()
    for name, path in sorted(module_closure(module, root).items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        for data in package_data(path) if path.name == "__init__.py" else []:
            digest.update(data.relative_to(path.parent).as_posix().encode() + b"\0" + data.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def step_code_versions() -> dict[str, str]:
    """The code version of every step (:data:`commerce_lm.config.STEPS`), keyed by its command name."""
    return {step.name: code_version(step.module) for step in config.STEPS}
