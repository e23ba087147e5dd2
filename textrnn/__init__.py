"""textrnn: a hand-written RNN sentiment classifier, run as a DVC pipeline."""

from textrnn.core import cpu_dispatch

__version__ = "0.2.0"  # the one version number: pyproject.toml reads it (dynamic = ["version"])

cpu_dispatch.pin()  # before any torch op: ATen and MKL read their settings once, at first use
