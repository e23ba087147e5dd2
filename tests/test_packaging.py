"""The package's metadata: one version number."""

from __future__ import annotations

from conftest import ROOT
from setuptools.config.pyprojecttoml import read_configuration

import textrnn


def test_the_installed_version_is_textrnn_dunder_version():
    # What `pip install` would write as the distribution's version, read from pyproject.toml as setuptools does.
    project = read_configuration(ROOT / "pyproject.toml", expand=True)["project"]
    assert project["dynamic"] == ["version"]
    assert project["version"] == textrnn.__version__
