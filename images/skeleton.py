"""Empty packages for every package pyproject.toml lists, so pip resolves the dependencies alone.

The images' deps stage installs the dependencies before any of our code is copied in, so that a code
change rebuilds only the last layers; setuptools refuses a package list naming a missing folder. The
list is read from pyproject.toml here, never copied into a Dockerfile, so the two cannot drift apart.
"""

import sys
import tomllib
from pathlib import Path


def package_dirs(pyproject: dict) -> list[Path]:
    """The folder of each package in ``[tool.setuptools] packages``, as ``package-dir`` maps it."""
    setuptools = pyproject["tool"]["setuptools"]
    roots = {"": ".", **setuptools.get("package-dir", {})}
    folders = []
    for package in setuptools["packages"]:
        # The longest mapped prefix wins (setuptools' rule); "" maps every other package.
        prefix = max((p for p in roots if p == "" or package == p or package.startswith(f"{p}.")), key=len)
        rest = package[len(prefix) :].lstrip(".")
        folders.append(Path(roots[prefix], *rest.split(".")) if rest else Path(roots[prefix]))
    return folders


def main(root: Path) -> None:
    """Create an empty ``__init__.py`` (unless one exists) in every package folder under ``root``.

    The readme pyproject.toml names too: its text is metadata only, and a README edit must not
    reinstall every dependency.
    """
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    for folder in package_dirs(pyproject):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "__init__.py").touch()
    (root / pyproject["project"]["readme"]).touch()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
