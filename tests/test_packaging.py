"""The package's metadata: one version number, dependencies declared as used."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys

from conftest import ROOT
from setuptools.config.pyprojecttoml import read_configuration

import textrnn


def test_the_installed_version_is_textrnn_dunder_version():
    # What `pip install` would write as the distribution's version, read from pyproject.toml as setuptools does.
    project = read_configuration(ROOT / "pyproject.toml", expand=True)["project"]
    assert project["dynamic"] == ["version"]
    assert project["version"] == textrnn.__version__


# Run as a command (the pipeline itself, textrnn/project/report.py), never imported by textrnn/ or stages/.
COMMAND_DEPENDENCIES = {"dvc"}


def _distribution(requirement: str) -> str:
    """`scikit-learn>=1.3` -> `scikit-learn`, spelled as PEP 503 compares names."""
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports(folders: list[str]) -> dict[str, set[str]]:
    """Top-level module -> the files importing it, lazy imports inside functions included."""
    local = {"textrnn"} | {path.stem for folder in folders for path in (ROOT / folder).glob("*.py")}
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in local:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_runtime_dependencies_are_exactly_what_textrnn_and_stages_import():
    declared = {_distribution(r) for r in read_configuration(ROOT / "pyproject.toml")["project"]["dependencies"]}
    providers = importlib.metadata.packages_distributions()
    imported = set()
    for module, files in _third_party_imports(["textrnn", "stages"]).items():
        distributions = {_distribution(d) for d in providers.get(module, [])}
        assert distributions & declared, f"{module} (imported by {sorted(files)}) is not a declared dependency"
        imported |= distributions & declared
    assert declared - imported == COMMAND_DEPENDENCIES


def test_requirements_txt_pins_every_declared_dependency():
    # CI installs requirements.txt alone: the runtime, dev and bench dependencies, each at one exact version.
    project = read_configuration(ROOT / "pyproject.toml")["project"]
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = [line for line in lines if line and not line.startswith(("#", "-e "))]
    assert all("==" in pin for pin in pins), pins
    assert {_distribution(pin) for pin in pins} == {_distribution(r) for r in declared}
