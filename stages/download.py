"""Stage download: the dataset (a local parquet folder or a Hub id) -> data/raw/ (split files, labels.json)."""

from pathlib import Path

import _root  # noqa: F401  (first: imports textrnn from this checkout)

from textrnn.core.params import load_params
from textrnn.core.runtime import cli_main
from textrnn.pipeline import download


@cli_main
def main() -> None:
    download.run(load_params("download"), out_dir=Path("data/raw"))


if __name__ == "__main__":
    main()
