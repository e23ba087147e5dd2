"""Checkpoints: the weights, with what it takes to rebuild the model and to feed it the right tokens.

A checkpoint is a dict that loads with ``torch.load(..., weights_only=True)`` (nothing in it runs):
``format``, ``config`` (the ModelConfig), ``label_names``, ``inputs`` (the sha256 of the vocabulary
it was trained with, the tokenizer's fingerprint, ``max_tokens``), ``metadata`` (best epoch,
training device, ...) and ``state_dict``. The same weights always give the same bytes.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from textrnn.core.errors import UserError
from textrnn.core.filesystem import atomic_path, read_fault
from textrnn.model.classifier import RNN, ModelConfig

CHECKPOINT_FORMAT = "textrnn-checkpoint-v2"
INPUT_KEYS = ("vocab_sha256", "tokenizer", "max_tokens")


@dataclass
class Checkpoint:
    model: RNN
    label_names: list[str]
    inputs: dict[str, Any]  # vocab_sha256, tokenizer, max_tokens
    metadata: dict[str, Any]


def save_checkpoint(
    path: Path,
    model: RNN,
    state_dict: dict[str, torch.Tensor],
    label_names: list[str],
    metadata: dict[str, Any],
    inputs: dict[str, Any],
) -> None:
    """Write the checkpoint atomically; the same arguments give the same bytes."""
    for name, tensor in state_dict.items():
        if not torch.isfinite(tensor).all():
            raise RuntimeError(f"refusing to save a checkpoint with non-finite weights in {name}")
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(model.config),
        "label_names": list(label_names),
        "inputs": {key: inputs[key] for key in INPUT_KEYS},
        "metadata": dict(metadata),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    }
    # Saved to a file path, torch names the zip's inner folder after the file: a random temporary
    # name would make every save's bytes differ. A buffer's inner folder is always "archive".
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


class _NoInit(TorchFunctionMode):
    """Inside, the torch.nn.init functions leave their tensor as it is.

    On the meta device there is nothing to initialize, and a meta ``normal_`` (nn.Embedding's) would
    import torch._dynamo, a slow import that evaluate and predict need nowhere else (docs/decisions.md).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init":
            return kwargs["tensor"] if "tensor" in kwargs else args[0]
        return func(*args, **kwargs)


def _checked_model(path: Path, payload: dict) -> RNN:
    """The model of ``payload``, its shapes checked against the file's tensors before any allocation."""
    try:
        config = ModelConfig(**payload["config"])
        with torch.device("meta"), _NoInit():  # shapes only: a config claiming a huge vocabulary allocates nothing
            expected = {name: tuple(t.shape) for name, t in RNN(config).state_dict().items()}
    except (TypeError, ValueError, KeyError) as error:
        raise UserError(f"{path}: checkpoint does not match the model ({str(error).splitlines()[0]})") from None
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise UserError(f"{path}: not a textrnn checkpoint (no state_dict of tensors)")
    found = {name: tuple(t.shape) for name, t in state.items()}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or [n for n in expected if found[n] != expected[n]]
        raise UserError(
            f"{path}: its weights do not match its config {config} (first: {wrong[0]}); "
            f"retrain with `dvc repro -f train`"
        )
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise UserError(f"{path}: weights {name} are not finite (NaN or inf); retrain with `dvc repro -f train`")
    model = RNN(config)
    model.load_state_dict(state)
    return model.eval()


def load_checkpoint(path: Path, map_location: str = "cpu") -> Checkpoint:
    """Rebuild the model from ``path`` (weights_only: nothing in the file is executed)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: checkpoint not found; train one with `dvc repro train`") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a checkpoint") from None
    except OSError as error:
        if error.errno is None:  # an error of the content, with no errno of the file system
            raise UserError(
                f"{path}: corrupt or truncated checkpoint ({type(error).__name__}); retrain with `dvc repro -f train`"
            ) from None
        raise read_fault(path, error) from None  # the file is there but cannot be read: retraining would not help
    except pickle.UnpicklingError as error:
        if "unsupported global" not in str(error).lower():  # a foreign object, not mere garbage
            raise UserError(
                f"{path}: corrupt or truncated checkpoint (not a torch file); retrain with `dvc repro -f train`"
            ) from None
        # torch's own message advises weights_only=False, which would run the file's code: never relay it.
        raise UserError(
            f"{path}: refused: it holds Python objects other than tensors and plain data, which "
            f"could run code; use a checkpoint made by `dvc repro train`"
        ) from None
    except Exception as error:
        raise UserError(
            f"{path}: corrupt or truncated checkpoint ({type(error).__name__}); retrain with `dvc repro -f train`"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        hint = "; it was made by an older textrnn: retrain with `dvc repro -f train`" if found else ""
        raise UserError(f"{path}: not a textrnn checkpoint (no '{CHECKPOINT_FORMAT}' format tag){hint}")
    inputs = payload.get("inputs")
    if not isinstance(inputs, dict) or set(inputs) != set(INPUT_KEYS):
        raise UserError(f"{path}: not a textrnn checkpoint (no record of its vocabulary and tokenizer)")
    label_names, config = payload.get("label_names"), payload.get("config")
    if (
        not isinstance(config, dict)
        or not isinstance(label_names, list)
        or len(label_names) != config.get("num_classes")
    ):
        raise UserError(
            f"{path}: its label names do not match its number of classes; retrain with `dvc repro -f train`"
        )
    return Checkpoint(
        _checked_model(path, payload), [str(n) for n in label_names], dict(inputs), dict(payload.get("metadata") or {})
    )
