"""Stage train: data/vectors + data/vocab.txt -> models/model.pt, plots/training/ (DVCLive TSVs and PNGs).

Runs as one process, or under `torchrun --nproc_per_node N stages/train.py` with DDP (rank 0 writes).
"""
import _root  # noqa: F401  (first: imports textrnn from this checkout)
import contextlib
import logging
import sys
from pathlib import Path

import torch

from textrnn import distributed
from textrnn.data import EncodedSplit
from textrnn.errors import cli_main
from textrnn.io import atomic_dir
from textrnn.model import RNN, ModelConfig, initialize, save_checkpoint
from textrnn.params import load_params
from textrnn.reporting import EpochReporter, plot_history
from textrnn.training import TrainConfig, resolve_device, run_metadata, train_model
from textrnn.vocab import Vocab

VECTORS, VOCAB, MODEL, PLOTS = Path("data/vectors"), Path("data/vocab.txt"), Path("models/model.pt"), Path("plots/training")
log = logging.getLogger("train")


@cli_main
def main() -> None:
    params = load_params("train")
    if params["nproc"] > 1 and not distributed.launched_by_torchrun():
        sys.exit(distributed.relaunch_with_torchrun(__file__, params["nproc"], resolve_device(params["device"])))
    if params["threads"]:
        torch.set_num_threads(params["threads"])
    vocab_size = len(Vocab.load(VOCAB))
    train, valid = (EncodedSplit.load(VECTORS / f"{name}.npz", vocab_size) for name in ("train", "valid"))
    torch.manual_seed(params["seed"])
    model = RNN(ModelConfig(vocab_size, params["embedding_size"], params["hidden_size"], len(train.label_names)))
    initialize(model, params["recurrent_init"], params["embedding_init_std"])
    config = TrainConfig(params["lr"], params["batch_size"], params["epochs"], params["seed"],
                         params["clip_grad_norm"], params["valid_batch_size"], params["max_tokens"])
    device = distributed.local_device(resolve_device(params["device"]))
    with distributed.process_group(device):
        main_rank = distributed.is_main()
        if main_rank:
            log.info("train: %d reviews on %s x%d, %s", len(train), device, distributed.world_size(), model.config)
        with atomic_dir(PLOTS) if main_rank else contextlib.nullcontext() as live_dir:
            reporter = EpochReporter(live_dir, config.epochs) if main_rank else None
            result = train_model(model, train, valid, config, device, reporter)
            if main_rank:
                plot_history(live_dir, result.history, result.best_epoch)
                # Scoring cuts reviews as training did: evaluate and predict read max_tokens from here.
                metadata = {**run_metadata(result, device), "max_tokens": config.max_tokens}
                save_checkpoint(MODEL, model, result.best_state, train.label_names, metadata)
    if main_rank:
        log.info("train: best valid loss at epoch %d -> %s (%s)", result.best_epoch, MODEL, metadata)


if __name__ == "__main__":
    main()
