"""Every package of the source tree is in pyproject.toml's package list, so a regular (non-editable) install
ships it: a subpackage left out installs a graphperf whose CLI fails to import."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, dirs = set(tool["packages"]), tool["package-dir"]
    found = set()
    for package, folder in dirs.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            name = ".".join((package, *rel.parts)) if rel.parts else package
            if not any(part.startswith((".", "__")) for part in rel.parts):
                found.add(name)
    # a package under graphperf/ that has its own package-dir entry (graphperf.passes -> passes/) counts once
    assert found - listed == set(), "add these to pyproject.toml [tool.setuptools] packages"
    assert listed - found == set(), "listed packages without a folder"
