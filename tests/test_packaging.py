"""The package list in pyproject.toml must cover every package folder, or a wheel install
would silently miss modules."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folder_of = {name: folder for name, folder in config["package-dir"].items()}
    found = set()
    for name, folder in folder_of.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == listed


def test_subpackages_import_under_one_namespace():
    import physground.benchmarks
    import physground.learned
    import physground.metrics
    import physground.reports
    import physground.simulators  # noqa: F401


def _module_level_imports(path: Path) -> set[str]:
    """Top-level names imported at module level (not inside functions or TYPE_CHECKING)."""
    import ast

    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_level_import_is_a_core_dependency():
    """A module imported when physground loads must come from a core dependency in
    pyproject.toml (an extra's or a transitive one is missing on a fresh `pip install .`:
    `click` came only through typer, then not at all, and the README's first command
    failed)."""
    import re
    import sys
    from importlib.metadata import packages_distributions

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower().replace("_", "-")
            for d in project["dependencies"]}
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dists = packages_distributions()
    missing = {}
    for folder in set(config["package-dir"].values()):
        for path in (ROOT / folder).rglob("*.py"):
            for name in _module_level_imports(path):
                if name in sys.stdlib_module_names or name in ("physground", "__future__"):
                    continue
                owners = {d.lower().replace("_", "-") for d in dists.get(name, [])}
                if not owners & core:
                    missing.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not missing, missing
