"""Stage baseline: data/split/ -> metrics/baseline.json (TF-IDF + logistic regression, for comparison with the RNN)."""

from pathlib import Path

import _root  # noqa: F401  (first: imports textrnn from this checkout)

from textrnn.core.params import load_params
from textrnn.core.runtime import cli_main
from textrnn.pipeline import baseline


@cli_main
def main() -> None:
    baseline.run(load_params("baseline"), split_dir=Path("data/split"), metrics_path=Path("metrics/baseline.json"))


if __name__ == "__main__":
    main()
