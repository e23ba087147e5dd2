"""dvc.yaml cannot drift from the code: every textrnn module a stage imports is one of its deps."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

PACKAGE = ROOT / "textrnn"


def module_file(name: str) -> Path | None:
    """The file of module ``name`` inside this checkout's textrnn package, if it is one."""
    if name != "textrnn" and not name.startswith("textrnn."):
        return None
    path = ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in ``path`` (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return names


def code_of(script: Path) -> set[Path]:
    """``script`` and every textrnn file it loads, transitively (package __init__ files included)."""
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                found = module_file(".".join(parts[:depth]))
                if found is not None:
                    todo.append(found)
    return seen


def stages():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(ROOT)
    return any(relative == Path(dep) or Path(dep) in relative.parents for dep in deps)


@pytest.mark.parametrize("name", list(stages()))
def test_every_module_a_stage_imports_is_a_dependency(name):
    stage = stages()[name]
    script = ROOT / stage["cmd"].split()[1]
    assert script.is_file(), stage["cmd"]
    missing = sorted(str(p.relative_to(ROOT)) for p in code_of(script) if not covered(p, stage["deps"]))
    assert not missing, f"stage {name} imports these but does not depend on them: {missing}"


# The C++ sources a module compiles and loads: code of every stage that imports the module.
NATIVE_SOURCES = {
    "textrnn/text/fast_tokenizer.py": ["textrnn/text/csrc/tokenize.cpp"],
    "textrnn/accel/kernel.py": ["textrnn/accel/csrc/rmsprop.cpp", "textrnn/accel/csrc/rnn_tanh.cpp"],
}


def test_the_native_sources_listed_here_are_the_ones_the_modules_build():
    from textrnn.text import fast_tokenizer

    assert [str(p.relative_to(ROOT)) for p in fast_tokenizer.SOURCES] == NATIVE_SOURCES[
        "textrnn/text/fast_tokenizer.py"
    ]
    kernel = (ROOT / "textrnn/accel/kernel.py").read_text(encoding="utf-8")
    assert '("rnn_tanh.cpp", "rmsprop.cpp")' in kernel
    for sources in NATIVE_SOURCES.values():
        assert all((ROOT / source).is_file() for source in sources), sources


@pytest.mark.parametrize("name", list(stages()))
def test_a_stage_depends_on_the_cpp_sources_it_compiles(name):
    stage = stages()[name]
    code = {str(p.relative_to(ROOT)) for p in code_of(ROOT / stage["cmd"].split()[1])}
    needed = sorted(source for module, sources in NATIVE_SOURCES.items() if module in code for source in sources)
    missing = [source for source in needed if not covered(ROOT / source, stage["deps"])]
    assert not missing, f"stage {name} compiles these but does not depend on them: {missing}"


def test_the_walk_finds_nested_and_from_imports():
    """Guards the test above: it must see imports inside functions and `from package import module`."""
    found = {str(p.relative_to(ROOT)) for p in code_of(ROOT / "stages" / "download.py")}
    assert {"textrnn/pipeline/download.py", "textrnn/data/sources.py", "textrnn/core/errors.py"} <= found
    assert "textrnn/pipeline/train.py" not in found


def test_kernel_sources_are_deps_of_the_stages_that_run_the_model():
    for name in ("train", "evaluate"):
        assert covered(PACKAGE / "accel" / "csrc" / "rnn_tanh.cpp", stages()[name]["deps"]), name
