"""Stage vectorize: data/split/ + data/vocab.txt -> data/vectors/ (token ids per split, memory-mappable .npy)."""

from pathlib import Path

import _root  # noqa: F401  (first: imports textrnn from this checkout)

from textrnn.core.params import load_params
from textrnn.core.runtime import cli_main
from textrnn.pipeline import vectorize


@cli_main
def main() -> None:
    vectorize.run(
        load_params("vectorize"),
        split_dir=Path("data/split"),
        vocab_path=Path("data/vocab.txt"),
        out_dir=Path("data/vectors"),
    )


if __name__ == "__main__":
    main()
