"""Stage train: data/vectors/ + data/vocab.txt -> models/model.pt (the best epoch), plots/training/ (curves).

Runs as one process, or under `torchrun --nproc_per_node N stages/train.py` with DDP (rank 0 writes).
"""

import sys
from pathlib import Path

import _root  # noqa: F401  (first: imports textrnn from this checkout)

from textrnn.core.params import load_params
from textrnn.core.runtime import cli_main
from textrnn.pipeline import train
from textrnn.scoring.inference import resolve_device
from textrnn.training import distributed


@cli_main
def main() -> None:
    params = load_params("train")
    if params["nproc"] > 1 and not distributed.launched_by_torchrun():
        sys.exit(distributed.relaunch_with_torchrun(__file__, params["nproc"], resolve_device(params["device"])))
    train.run(
        params,
        vectors_dir=Path("data/vectors"),
        vocab_path=Path("data/vocab.txt"),
        model_path=Path("models/model.pt"),
        plots_dir=Path("plots/training"),
    )


if __name__ == "__main__":
    main()
