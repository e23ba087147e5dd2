"""The benchmark scripts still start: they import the library by name, so a rename breaks them silently."""

import subprocess
import sys

import pytest
from conftest import ROOT

SCRIPTS = sorted(path.name for path in (ROOT / "benchmarks").glob("*.py"))


def test_the_benchmarks_are_all_here():
    assert {"preprocess_speed.py", "scale.py", "train_speed.py", "model_speed.py"} <= set(SCRIPTS)


@pytest.mark.slow  # one subprocess per benchmark, most import torch
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_benchmark_imports_and_explains_itself(script):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:"), result.stdout[:200]
