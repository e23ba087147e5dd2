"""Stage split: data/raw/ -> data/split/{train,valid,test}.parquet (valid and test carved from train where
needed), and metrics/data.json (rows of valid and test whose text train also has)."""

from pathlib import Path

import _root  # noqa: F401  (first: imports textrnn from this checkout)

from textrnn.core.params import load_params
from textrnn.core.runtime import cli_main
from textrnn.pipeline import split


@cli_main
def main() -> None:
    split.run(
        load_params("split"),
        raw_dir=Path("data/raw"),
        out_dir=Path("data/split"),
        metrics_path=Path("metrics/data.json"),
    )


if __name__ == "__main__":
    main()
