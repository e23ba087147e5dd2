"""The train stage's work: vectors + vocabulary -> a checkpoint (the best epoch) and per-epoch curves."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import torch

from textrnn.core.errors import UserError
from textrnn.core.filesystem import atomic_dir, check_writable
from textrnn.data.vectors import open_split, read_meta
from textrnn.model import RNN, ModelConfig, initialize, save_checkpoint
from textrnn.scoring.inference import resolve_device
from textrnn.text import tokenizer
from textrnn.text.vocab import Vocab
from textrnn.training import distributed, memory
from textrnn.training.loop import TrainConfig, train_model
from textrnn.training.reporting import EpochReporter, plot_history

log = logging.getLogger("train")

MODEL_KEYS = ("embedding_size", "hidden_size", "cell", "bidirectional", "readout", "dropout")
TRAIN_KEYS = (
    "lr",
    "batch_size",
    "epochs",
    "seed",
    "clip_grad_norm",
    "valid_batch_size",
    "max_tokens",
    "optimizer",
    "weight_decay",
    "lr_schedule",
    "patience",
    "class_weight",
)


def check_vectors(vectors_dir: Path, vocab: Vocab, vocab_path: Path) -> dict[str, Any]:
    """The vectors' metadata, once it is clear they were made with this vocabulary and this tokenizer."""
    meta = read_meta(vectors_dir)
    if meta["vocab_sha256"] != vocab.fingerprint():
        raise UserError(
            f"{vectors_dir} was made with another vocabulary than {vocab_path}; rerun `dvc repro vectorize`"
        )
    if meta["tokenizer"] != tokenizer.fingerprint():
        raise UserError(
            f"{vectors_dir} was made with other tokenizer rules than textrnn/text/tokenizer.py's; "
            f"rerun `dvc repro vectorize`"
        )
    return meta


def run(params: dict[str, Any], vectors_dir: Path, vocab_path: Path, model_path: Path, plots_dir: Path) -> None:
    # The outputs are written after the last epoch: a folder that refuses them must say so before the first.
    check_writable(model_path)
    check_writable(plots_dir, folder=True)
    if params["threads"]:
        torch.set_num_threads(params["threads"])
    vocab = Vocab.load(vocab_path)
    check_vectors(vectors_dir, vocab, vocab_path)
    train, valid = (open_split(vectors_dir, name, len(vocab)) for name in ("train", "valid"))
    config = ModelConfig(len(vocab), num_classes=len(train.label_names), **{k: params[k] for k in MODEL_KEYS})
    train_config = TrainConfig(**{k: params[k] for k in TRAIN_KEYS})
    device = distributed.local_device(resolve_device(params["device"]))
    memory.check_training_fits(config, train_config, train, valid, device)
    torch.manual_seed(params["seed"])
    model = RNN(config)
    initialize(model, params["recurrent_init"], params["embedding_init_std"])
    with distributed.process_group(device):
        torch.manual_seed(params["seed"] + distributed.rank())  # each rank its own dropout masks, same weights
        main_rank = distributed.is_main()
        if main_rank:
            log.info("train: %d reviews on %s x%d, %s", len(train), device, distributed.world_size(), config)
        with atomic_dir(plots_dir) if main_rank else contextlib.nullcontext() as live_dir:
            reporter = EpochReporter(live_dir, train_config.epochs) if live_dir is not None else None
            result = train_model(model, train, valid, train_config, device, reporter)
            if main_rank:
                assert live_dir is not None and reporter is not None  # made on the main rank
                reporter.finish(result.best_epoch)
                plot_history(live_dir, result.history, result.best_epoch)
                metadata = {
                    "best_epoch": result.best_epoch,
                    "train_device": f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "cpu",
                    "world_size": distributed.world_size(),
                    "torch_version": str(torch.__version__),
                    "skipped_steps": sum(s.skipped_steps for s in result.history),
                }
                inputs = {
                    "vocab_sha256": vocab.fingerprint(),
                    "tokenizer": tokenizer.fingerprint(),
                    "max_tokens": params["max_tokens"],
                }
                save_checkpoint(model_path, model, result.best_state, train.label_names, metadata, inputs)
    if main_rank:
        log.info("train: best valid loss at epoch %d -> %s (%s)", result.best_epoch, model_path, metadata)
