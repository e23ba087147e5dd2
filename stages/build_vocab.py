"""Stage build_vocab: data/split/train.parquet -> data/vocab.txt (line i is token id i)."""

from pathlib import Path

import _root  # noqa: F401  (first: imports textrnn from this checkout)

from textrnn.core.params import load_params
from textrnn.core.runtime import cli_main
from textrnn.pipeline import build_vocab


@cli_main
def main() -> None:
    build_vocab.run(load_params("vocab"), split_dir=Path("data/split"), vocab_path=Path("data/vocab.txt"))


if __name__ == "__main__":
    main()
