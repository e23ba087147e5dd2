"""Stage evaluate: models/model.pt + data/vectors/ -> metrics/metrics.json, metrics/plots/, plots/evaluation/*.png."""

from pathlib import Path

import _root  # noqa: F401  (first: imports textrnn from this checkout)

from textrnn.core.params import load_params
from textrnn.core.runtime import cli_main
from textrnn.pipeline import evaluate


@cli_main
def main() -> None:
    evaluate.run(
        load_params("evaluate"),
        model_path=Path("models/model.pt"),
        vectors_dir=Path("data/vectors"),
        metrics_path=Path("metrics/metrics.json"),
        plot_data_dir=Path("metrics/plots"),
        png_dir=Path("plots/evaluation"),
    )


if __name__ == "__main__":
    main()
