"""Checkpoints: the weights with the config and label names needed to rebuild the model."""
from __future__ import annotations

import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from textrnn.errors import UserError
from textrnn.io import atomic_path
from textrnn.model.classifier import RNN, ModelConfig

CHECKPOINT_FORMAT = "textrnn-checkpoint-v1"


def save_checkpoint(path: Path, model: RNN, state_dict: Dict[str, torch.Tensor], label_names: List[str],
                    metadata: Dict[str, object]) -> None:
    """Write the weights with the sizes and labels needed to rebuild the model, atomically."""
    for name, tensor in state_dict.items():
        if not torch.isfinite(tensor).all():
            raise RuntimeError(f"refusing to save a checkpoint with non-finite weights in {name}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(model.config),
        "label_names": list(label_names),
        "metadata": dict(metadata),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, map_location: str = "cpu") -> Tuple[RNN, List[str], Dict[str, object]]:
    """Rebuild the model from ``path`` (weights_only: nothing in the file is executed)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: checkpoint not found; train one with `dvc repro train`") from None
    except pickle.UnpicklingError as error:
        if "unsupported global" not in str(error).lower():  # a foreign object, not mere garbage
            raise UserError(f"{path}: corrupt or truncated checkpoint (not a torch file); "
                            f"retrain with `dvc repro -f train`") from None
        # torch's own message advises weights_only=False, which would run the file's code: never relay it.
        raise UserError(f"{path}: refused: it holds Python objects other than tensors and plain data, which "
                        f"could run code; use a checkpoint made by `dvc repro train`") from None
    except Exception as error:
        raise UserError(f"{path}: corrupt or truncated checkpoint ({type(error).__name__}); "
                        f"retrain with `dvc repro -f train`") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path}: not a textrnn checkpoint (no '{CHECKPOINT_FORMAT}' format tag)")
    try:
        model = RNN(ModelConfig(**payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (TypeError, ValueError, KeyError, RuntimeError) as error:
        raise UserError(f"{path}: checkpoint does not match the model ({str(error).splitlines()[0]})") from None
    model.eval()
    return model, list(payload["label_names"]), dict(payload.get("metadata", {}))
