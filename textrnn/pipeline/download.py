"""The download stage's work, as a function of its params section and its paths (stages/download.py calls it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from textrnn.core.filesystem import atomic_dir
from textrnn.data.raw import write_raw
from textrnn.data.sources import hub_source, local_source
from textrnn.data.splits import read_labels

log = logging.getLogger("textrnn")


def _warn_if_outside(dataset: str) -> None:
    path = Path(dataset).expanduser()
    if not path.is_absolute() and not path.resolve().is_relative_to(Path.cwd().resolve()):
        log.warning(
            "download: %s is outside the project; queued and --temp experiments run in a copy of the "
            "project under .dvc/tmp and cannot reach it by this relative path: give an absolute path "
            "(`-S download.dataset=%s`)",
            dataset,
            path.resolve(),
        )


def run(params: dict[str, Any], out_dir: Path) -> dict[str, int]:
    """The dataset (a local folder of parquet files, or ``params["hub"]``) as standardized split files."""
    if params["hub"] is not None:
        source = hub_source(params["hub"], params["revision"], params["label_column"], params["config"])
    else:
        _warn_if_outside(params["dataset"])
        source = local_source(Path(params["dataset"]), params["label_column"])
    with atomic_dir(out_dir) as tmp:
        rows = write_raw(source, params["text_column"], params["label_column"], tmp)
    log.info(
        "download: %s -> %s (%s rows; classes %s)",
        source.description,
        out_dir,
        ", ".join(f"{name} {n}" for name, n in rows.items()),
        read_labels(out_dir),
    )
    return rows
