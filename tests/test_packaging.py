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
